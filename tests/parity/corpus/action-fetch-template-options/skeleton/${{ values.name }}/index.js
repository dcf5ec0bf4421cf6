const name = '${{ values.name }}';
