VALUE = "helper imported"
