second ${{ values.name }}
