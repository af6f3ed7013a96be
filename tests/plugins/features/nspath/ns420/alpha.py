VALUE = "ns420.alpha from the plugin root"
