"""Shared fixtures for the molecular-dynamics tests (CPU, float64 unless a test says otherwise)."""

import warp as wp

wp.config.quiet = True
