"""The usage ledger: one record per finished call, for cost attribution per tenant and user."""
