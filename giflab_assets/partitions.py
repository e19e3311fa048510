"""Partitions: one dynamic partition per GIF, keyed by the full sha256 of its bytes."""

from dagster import DynamicPartitionsDefinition

gifs_partitions = DynamicPartitionsDefinition(name="gifs")
