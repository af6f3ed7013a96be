ORIGIN = "deps"
