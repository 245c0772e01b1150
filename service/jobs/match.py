"""Who is who in a campaign, and which unit a filled form belongs to.

Exact signals first (DESIGN.md, "Mail"): the hidden stamp inside the workbook, then the reference
code printed in it. ``match_form`` is the one place that reads them, for the poller's decisions
and for `skjemapost form check` alike; a reply's subject, body and sender are the poller's own
fallbacks (``decide``). References are looked up in a map built once per load, not by computing
every unit's HMAC per form.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import TokenError
from service.forms.model import FormReading
from service.mail import tokens
from service.models import Unit
from service.store.database import Store


@dataclass(frozen=True)
class Directory:
    """Who is who in the campaign, loaded once per poll."""

    campaign_id: str
    secret: bytes
    units: dict[str, Unit]  # code -> unit, deactivated ones too (old mail still counts)
    by_address: dict[str, list[str]]  # leader/verneombud address -> unit codes
    former_leaders: dict[str, str]  # an address that led a unit earlier -> its code
    by_reference: dict[str, str]  # reference code -> unit code

    @classmethod
    def load(cls, store: Store, campaign_id: str, secret: bytes) -> Directory:
        units = {u.code: u for u in store.units(campaign_id, include_inactive=True)}
        by_address: dict[str, list[str]] = {}
        for u in units.values():
            for address in {u.leader_email.lower(), u.verneombud_email.lower()} - {""}:
                by_address.setdefault(address, []).append(u.code)
        refs = {tokens.reference(secret, campaign_id, code): code for code in units}
        return cls(campaign_id, secret, units, by_address, store.former_leader_emails(campaign_id), refs)

    def may_send_for(self, address: str, code: str) -> bool:
        unit = self.units[code]
        return (
            address in (unit.leader_email.lower(), unit.verneombud_email.lower())
            or self.former_leaders.get(address) == code
        )

    def unit_of_reference(self, text: str) -> str | None:
        """The unit whose reference ``text`` is (after typo checks); None if it names none.
        Raises TokenError for a reference that does not verify."""
        return self.by_reference.get(tokens.verify(self.secret, self.campaign_id, text))


@dataclass(frozen=True)
class FormMatch:
    """Which unit a form names, and how it was recognised; or why it cannot be given one."""

    unit: str | None
    how: str  # "hidden stamp", "reference code in the form"; "" when neither is there
    trouble: str = ""  # set when the form names no unit of this campaign

    @property
    def found(self) -> bool:
        return self.unit is not None and not self.trouble


NEITHER = "the form carries neither its hidden stamp nor a reference code"


def match_form(reading: FormReading, directory: Directory) -> FormMatch:
    """The unit a form names by its hidden stamp, else by its visible reference code."""
    d = directory
    if reading.stamp:
        try:
            stamp = tokens.read_stamp(d.secret, reading.stamp)
        except TokenError:
            return FormMatch(
                None, "hidden stamp", "the form's hidden stamp does not verify (altered or forged)"
            )
        if stamp.campaign != d.campaign_id:
            return FormMatch(
                None, "hidden stamp", f"a form from campaign {stamp.campaign}, not {d.campaign_id}"
            )
        if stamp.unit_code not in d.units:
            return FormMatch(
                None, "hidden stamp", f"the stamp names unit {stamp.unit_code}, which is not in the roster"
            )
        return FormMatch(stamp.unit_code, "hidden stamp")
    if reading.reference:
        try:
            code = d.unit_of_reference(reading.reference)
        except TokenError as exc:
            return FormMatch(None, "reference code in the form", str(exc))
        if code is None:
            return FormMatch(
                None, "reference code in the form", f"reference {reading.reference} matches no unit"
            )
        return FormMatch(code, "reference code in the form")
    return FormMatch(None, "", NEITHER)
