"""Use-cases of the node. Each service takes its collaborators in its constructor; `Node` wires them."""
