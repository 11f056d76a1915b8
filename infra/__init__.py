"""The hookpress Pulumi program: one ComponentResource per concern, wired in ``__main__``."""
