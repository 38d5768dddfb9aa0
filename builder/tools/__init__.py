"""Lower layer: running external tools (processes, pip) the stages share."""
