"""Which brands a command covers: ``--brands a,b`` (or ``--brand``), checked against the store."""

from __future__ import annotations

from tabtune.data.store import CampaignStore, check_brands
from tabtune.errors import TabTuneInputError

__all__ = ["select_brands", "split_brands"]


def split_brands(value: str | None) -> list[str] | None:
    """``"a, b,"`` -> ``["a", "b"]`` (a brand named twice once); ``None`` -> ``None`` (the option
    was not given: no choice made).

    Raises
    ------
    TabTuneInputError
        The option was given but names no brand (``--brands ""`` from an empty shell variable,
        or ``--brands ,``): it used to select every brand.
    """
    if value is None:
        return None
    names = [b.strip() for b in str(value).split(",") if b.strip()]
    if not names:
        raise TabTuneInputError(
            f"the brand list {value!r} names no brand (an empty shell variable?): name the "
            "brands (a,b), or leave the option out to take every brand; nothing was done"
        )
    return list(dict.fromkeys(names))


def select_brands(store: CampaignStore, value: str | None) -> list[str]:
    """The brands named by a comma-separated option, or every brand of the store.

    Parameters
    ----------
    store : CampaignStore
    value : str or None
        ``"a,b"`` as given on the command line; None: every brand. A value that is
        one of the store's brand ids as a whole (an id holding a comma) names that brand.

    Returns
    -------
    list of str
        In the order given (or the store's order).

    Raises
    ------
    TabTuneInputError
        The store is empty, or some brands are not in it.
    """
    known = store.brands()
    if not known:
        raise TabTuneInputError(
            f"{store.root}: the campaign store is empty; load your export with "
            "`tabtune load FILE` (or simulate data with `tabtune synth`)"
        )
    wanted = split_brands(value)
    if wanted is None:
        return known
    if value is not None and value.strip() in known:
        return [value.strip()]  # one brand whose id holds a comma ("Acme, Inc.")
    check_brands(wanted, known, store.root)
    return wanted
