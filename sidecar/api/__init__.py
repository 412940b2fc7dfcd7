"""The gRPC edge: servicers, proto<->domain conversion, SidecarError->Status."""
