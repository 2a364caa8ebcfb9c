"""The TLS test bank (mutual TLS + signed requests on loopback) and its throw-away PKI."""
