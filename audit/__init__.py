"""The one audit list of every change: ScaleDeck's own settings, cluster writes and SLO changes.

A top app: it reads accounts', fleet's and scaling's rows; nothing below imports it.
"""
