from . import experiments_pb2 as _experiments_pb2
from . import keys_pb2 as _keys_pb2
from . import usage_pb2 as _usage_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
