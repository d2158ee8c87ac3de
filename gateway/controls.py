"""The twelve controls' ids and modes, as the gateway imports them (defined in the shared core,
`labcore/controls.py`, where the authorization server's issuance policy reads them too)."""

from labcore.controls import CONTROLS, Mode, ModeField

__all__ = ["CONTROLS", "Mode", "ModeField"]
