"""Kafka Connect + Debezium: the connector configurations and a worker to run them."""
