"""The neural-mlops control plane: domain services over storage, behind thin gRPC servicers."""
