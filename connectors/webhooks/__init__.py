"""CRM webhook receiver: verified requests land on raw.crm.<vendor>, then map to canonical events.

Modules: ``app`` (ASGI receiver), ``signatures``, ``landing`` (acks=all produce), ``stage``
(mapping batch loop), ``declarative`` (YAML mappings), ``identity`` (canonical ids),
``service`` (wiring), ``cli``.
"""
