#!/bin/sh
# Starts orders against its database.
set -eu
. ./.env
echo "starting orders with database $DATABASE_NAME"
