VALUE = "nspkg.extra from deps"
