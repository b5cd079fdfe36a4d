"""Account merge under the ownership rules, and CRM ↔ ERP linking with a confidence gate."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Literal

from contracts.models import AccountEvent
from contracts.ownership import OwnershipPolicy, OwnershipViolation

__all__ = [
    "LinkDecision",
    "MergeResult",
    "account_changes",
    "decide_link",
    "match_confidence",
    "match_keys",
    "merge_account",
    "normalise_domain",
    "normalise_name",
    "normalise_tax_id",
]

AccountState = dict[str, Any]
_IDENTITY = ("account_id", "updated_at")
_LEGAL_SUFFIXES = frozenset(
    [
        "ab",
        "ag",
        "as",
        "bv",
        "co",
        "company",
        "corp",
        "corporation",
        "gmbh",
        "inc",
        "incorporated",
        "limited",
        "llc",
        "llp",
        "ltd",
        "nv",
        "oy",
        "plc",
        "sa",
        "sarl",
        "sas",
        "spa",
        "srl",
    ]
)
_NON_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The account after a change, what was applied, and which owned fields were touched."""

    state: AccountState
    applied: dict[str, Any]
    violations: list[OwnershipViolation]
    rejected: bool


def account_changes(event: AccountEvent) -> dict[str, Any]:
    """The fields an event changes: ``changed_fields`` if given, else every non-null field."""
    payload = event.payload.model_dump(mode="json")
    if event.changed_fields:
        return {
            n: payload.get(n) for n in event.changed_fields if n in payload and n not in _IDENTITY
        }
    return {k: v for k, v in payload.items() if v is not None and k not in _IDENTITY}


def merge_account(
    state: Mapping[str, Any] | None, event: AccountEvent, policy: OwnershipPolicy
) -> MergeResult:
    """Apply ``event`` to ``state`` keeping only what its source system owns (or may change).

    A change that touches a ``reject`` field is refused whole: the state stays as it was.
    """
    decision = policy.apply("account", event.source.system, account_changes(event))
    base: AccountState = dict(state) if state else {"account_id": event.payload.account_id}
    if decision.rejected:
        return MergeResult(base, {}, decision.violations, True)
    base.update(decision.allowed)
    base["account_id"] = event.payload.account_id
    base["updated_at"] = event.occurred_at.isoformat()
    return MergeResult(base, decision.allowed, decision.violations, False)


def normalise_name(name: str | None) -> str:
    """Lower case, punctuation and legal-form suffixes removed: ``"ACME B.V."`` → ``"acme"``."""
    if not name:
        return ""
    words = _NON_WORD.sub(" ", name.lower().replace(".", "")).split()
    while words and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def normalise_domain(domain: str | None) -> str:
    """Host of a web domain or URL without scheme, ``www.``, port or path."""
    if not domain:
        return ""
    host = domain.strip().lower().split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.removeprefix("www.")


def normalise_tax_id(tax_id: str | None) -> str:
    """Tax id without spaces, dots and dashes, upper case."""
    return _NON_WORD.sub("", tax_id.lower()).upper() if tax_id else ""


def match_keys(state: Mapping[str, Any]) -> list[str]:
    """Index keys under which an account can be found as a link candidate."""
    keys = []
    if tax := normalise_tax_id(state.get("tax_id")):
        keys.append(f"tax:{tax}")
    if name := normalise_name(state.get("name") or state.get("legal_name")):
        keys.append(f"name:{name}")
    if domain := normalise_domain(state.get("web_domain")):
        keys.append(f"domain:{domain}")
    return keys


def match_confidence(crm: Mapping[str, Any], erp: Mapping[str, Any]) -> tuple[float, str]:
    """How sure we are that a CRM account and an ERP customer are the same company (0..1).

    Equal tax ids are certain (1.0), different ones exclude (0.0). Otherwise the normalised
    name similarity counts half and an equal web domain the other half; without a domain on
    both sides the name alone can reach at most 0.7, below the default gate.
    """
    crm_tax, erp_tax = normalise_tax_id(crm.get("tax_id")), normalise_tax_id(erp.get("tax_id"))
    if crm_tax and erp_tax:
        return (1.0, "tax_id") if crm_tax == erp_tax else (0.0, "tax_id_differs")
    crm_name = normalise_name(crm.get("name") or crm.get("legal_name"))
    erp_name = normalise_name(erp.get("legal_name") or erp.get("name"))
    name = SequenceMatcher(None, crm_name, erp_name).ratio() if crm_name and erp_name else 0.0
    crm_dom, erp_dom = (
        normalise_domain(crm.get("web_domain")),
        normalise_domain(erp.get("web_domain")),
    )
    if crm_dom and erp_dom:
        return round(0.5 * name + (0.5 if crm_dom == erp_dom else 0.0), 4), "name+domain"
    return round(0.7 * name, 4), "name"


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """Link to a candidate, send the best one to a person for review, or nothing to do."""

    action: Literal["link", "review", "none"]
    candidate_id: str | None = None
    confidence: float = 0.0
    basis: str = ""
    scores: dict[str, float] = field(default_factory=dict)


def decide_link(
    account: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    threshold: float,
) -> LinkDecision:
    """Pick the best candidate of the other system; below ``threshold`` ask a person.

    ``account`` is an unlinked CRM account (no ERP customer number) or an unlinked ERP customer
    (no CRM id); candidates are accounts of the other side, each with its ``account_id``.
    """
    is_crm = not account.get("erp_customer_number")
    best: tuple[float, str, str] | None = None
    scores: dict[str, float] = {}
    for candidate in candidates:
        cid = str(candidate.get("account_id"))
        if cid == account.get("account_id"):
            continue
        if is_crm and not candidate.get("erp_customer_number"):
            continue
        if not is_crm and not candidate.get("crm_record_id"):
            continue
        crm, erp = (account, candidate) if is_crm else (candidate, account)
        score, basis = match_confidence(crm, erp)
        scores[cid] = score
        if best is None or score > best[0]:
            best = (score, cid, basis)
    if best is None or best[0] <= 0.0:
        return LinkDecision("none", scores=scores)
    action: Literal["link", "review"] = "link" if best[0] >= threshold else "review"
    return LinkDecision(action, best[1], best[0], best[2], scores)
