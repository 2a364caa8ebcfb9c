"""Single-use OAuth/consent ``state`` and the redirect-URI allow-list, shared by bank and Fortnox logins."""
