"""UK Open Banking (OBIE) v3.1 AIS family: the shared adapter that Revolut, Danske Bank and
Ålandsbanken (Crosskey) subclass."""

from ledgerlink.banks.adapters.obie.adapter import PERMISSIONS, ObieAdapter, RequestObjectSigner

__all__ = ["PERMISSIONS", "ObieAdapter", "RequestObjectSigner"]
