"""IVR flows as data: nodes, validation, versions, and the runner that plays them through the driver."""
