"""Stored cards ("Store Card for Future Use", spec §8 step 4): list them and remove them.

A card is stored by the payment that asks for it (`attempts.pay` with `store_card`, only when
the Group enables payment method storage): the gateway keeps the card in its vault and POPS
keeps the vault token, brand, last 4 and expiry, nothing more (S-4). A stored card is never
edited: a changed expiry or CVV is a new card.

A vault belongs to one merchant account, so a card stored by a split payment is in the vault of
each merchant account the payment went to, one `StoredCard` row each (its "twins": the same
guarantor, brand, last 4 and expiry). The guarantor sees it once; paying with it charges each
merchant account with that account's token; removing it removes it from every vault.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import QuerySet

from pops.core import audit, clock
from pops.ledger.models import Guarantor
from pops.payments.gateways.base import GatewayError, GatewayUnavailable, InvalidRequest
from pops.payments.gateways.registry import gateway_for
from pops.payments.models import StoredCard
from pops.payments.services.errors import PaymentsUnavailable

logger = logging.getLogger("pops.payments")


def list_cards(guarantor: Guarantor, *, today: dt.date | None = None) -> list[StoredCard]:
    """The guarantor's cards that can pay: active, on an active merchant account and not past
    their expiry month; each card once (the newest row of its twins), newest first."""
    today = today or clock.local_date(guarantor.practice.time_zone)
    cards = (
        StoredCard.objects.filter(
            practice_id=guarantor.practice_id,
            guarantor=guarantor,
            is_active=True,
            merchant_account__is_active=True,
        )
        .select_related("merchant_account")
        .order_by("-created_at", "-pk")
    )
    seen: set[tuple[str, str, int, int]] = set()
    out = []
    for card in cards:
        if (card.exp_year, card.exp_month) < (today.year, today.month):
            continue
        identity = _identity(card)
        if identity not in seen:
            seen.add(identity)
            out.append(card)
    return out


def _same_card(card: StoredCard) -> QuerySet[StoredCard]:
    return StoredCard.objects.filter(
        practice_id=card.practice_id,
        guarantor_id=card.guarantor_id,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_active=True,
    )


def is_card_id(text: str) -> bool:
    """Whether `text` can be a stored card's id as a payer sends it: up to 18 digits."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def find_card(guarantor: Guarantor, card_id: str) -> StoredCard | None:
    """The guarantor's active stored card with this id, or None, also for an id that cannot be
    one."""
    if not is_card_id(card_id):
        return None
    return StoredCard.objects.filter(
        practice_id=guarantor.practice_id, guarantor=guarantor, pk=int(card_id), is_active=True
    ).first()


def twins(card: StoredCard) -> list[StoredCard]:
    """The active rows of the same card (itself included), one per merchant account vault: a
    card stored by a split payment is in the vault of each account it was charged at."""
    return list(_same_card(card).select_related("merchant_account").order_by("pk"))


def vault_tokens(card: StoredCard) -> dict[int, str]:
    """The card's vault token at each merchant account whose vault holds it, in one query."""
    return dict(_same_card(card).values_list("merchant_account_id", "vault_token"))


def remove_card(card: StoredCard, *, actor: audit.Actor) -> StoredCard:
    """Remove a stored card: the gateway deletes it from its vault (each vault it is in), then
    it is marked inactive and audited. Removing a removed card answers it unchanged.

    Raises PaymentsUnavailable when a gateway could not be reached: the card rows the gateway
    did not confirm stay active, so the same call again finishes the job."""
    card = StoredCard.objects.select_related("guarantor__practice").get(pk=card.pk)
    if not card.is_active:
        return card
    removed: list[StoredCard] = []
    failed = False
    for row in twins(card):
        try:
            gateway_for(row.merchant_account).remove_stored_card(row.vault_token)
        except InvalidRequest as error:
            if error.code != "not_found":
                logger.error("could not remove stored card %s: %s", row.pk, error.code)
                failed = True
                continue
            # The vault no longer holds it: removed already.
        except GatewayUnavailable:
            logger.warning("gateway unavailable removing stored card %s", row.pk)
            failed = True
            continue
        except GatewayError as error:
            logger.error("could not remove stored card %s: %s", row.pk, error.code)
            failed = True
            continue
        removed.append(row)
    if removed:
        with transaction.atomic():
            StoredCard.objects.filter(pk__in=[row.pk for row in removed]).update(is_active=False)
            audit.record(
                "payments.stored_card.removed",
                actor=actor,
                practice=card.guarantor.practice,
                resource=("stored_card", str(card.pk)),
                guarantor_id=card.guarantor.external_id,
                data={
                    "brand": card.brand,
                    "ending": card.last4,
                    "rows": [row.pk for row in removed],
                },
            )
    if failed:
        raise PaymentsUnavailable("the card could not be removed from the gateway's vault")
    card.refresh_from_db()
    return card


def _identity(card: StoredCard) -> tuple[str, str, int, int]:
    return (card.brand, card.last4, card.exp_month, card.exp_year)
