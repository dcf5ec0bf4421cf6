#!/bin/sh
# Starts ${{ values.name }} against its database.
set -eu
. ./.env
echo "starting ${{ values.name }} with database $DATABASE_NAME"
