"""HubSpot: webhook v3 events mapped to canonical Account, Contact and Quote changes."""

from connectors.hubspot.mapping import (
    ACCEPTED_QUOTE_STATUSES,
    HubSpotContext,
    map_hubspot_event,
    map_hubspot_payload,
)

__all__ = ["ACCEPTED_QUOTE_STATUSES", "HubSpotContext", "map_hubspot_event", "map_hubspot_payload"]
