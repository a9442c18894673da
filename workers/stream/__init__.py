"""The streaming worker: aiokafka batches on the hot path, Faust as the application frame."""
