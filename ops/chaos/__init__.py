"""The fault suite: ``interlock up --simulate`` runs with faults injected on a seeded schedule."""
