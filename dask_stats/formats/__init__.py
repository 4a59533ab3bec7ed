"""Dataset formats, one subpackage per LeRobot version: each reads (plans) its datasets and writes its target."""
