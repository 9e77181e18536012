"""Measuring tools: accuracy (evaluate), charts (plot), a progress bar (progress), speed.

Used by the eval / calibrate / bench / train commands and by benchmarks/*.py; the door check
(doorcheck, access, gallery, vision, camera) never imports them.
"""
