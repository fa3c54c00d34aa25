"""Placeholder until its commands land."""

commands: list = []
