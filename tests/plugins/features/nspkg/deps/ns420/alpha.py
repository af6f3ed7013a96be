VALUE = "ns420.alpha from deps"
