VALUE = "ns420.beta from deps"
