"""Support code shared by the tests (no tests here): factories, builders, clients, Stripe helpers."""
