"""The only code that talks to mail servers: SMTP (aiosmtplib), IMAP (imap-tools) and XOAUTH2 tokens (msal)."""
