VALUE = "ns420.beta from vendor"
