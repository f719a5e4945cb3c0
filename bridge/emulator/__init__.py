"""A Dify Service API emulator: serves Dify app DSLs the way Dify 1.13.2 does (see the recordings).

from bridge.emulator import create_emulator_app, EmulatorConfig
app = create_emulator_app(EmulatorConfig(dsl_dir=Path("dify-dsl")))
"""

from .app import EmulatorConfig, create_emulator_app, emulator_apps, emulator_of
from .dsl import default_key

__all__ = ["EmulatorConfig", "create_emulator_app", "default_key", "emulator_apps", "emulator_of"]
