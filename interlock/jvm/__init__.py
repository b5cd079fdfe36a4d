"""Maven poms and broker configuration for the JVM parts (Apache Kafka, Kafka Connect)."""
