"""Print a development .env: DEBUG on, a random SECRET_KEY and FIELD_ENCRYPTION_KEY."""

import secrets

from cryptography.fernet import Fernet

print("DEBUG=1")
print(f"SECRET_KEY={secrets.token_urlsafe(50)}")
print(f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}")
