"""Test helpers that start real servers or programs: Dovecot and the aiosmtpd relay
(``mailservers``, which runs ``smtp_relay.py`` as its own process), a throwaway PostgreSQL cluster
(``pgserver``), a local OAuth identity provider over TLS (``oauth_idp``), Debian's chromium through
Playwright (``browsers``), the app served by uvicorn (``website``) and LibreOffice headless
(``filling``, which runs ``lo_fill.py`` under the system Python with ``uno``). Tests import them as
``from harness.mailservers import ...``: pytest puts tests/ itself on sys.path (tests/ is not a
package, so conftest.py and the test modules are imported by their bare names), and bench/ scripts
add tests/ to sys.path the same way. Pure data and builders (``projects``, ``email_samples``) stay
in tests/.
"""
