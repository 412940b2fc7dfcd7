from . import embed_pb2 as _embed_pb2
from . import generate_pb2 as _generate_pb2
from . import models_pb2 as _models_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
