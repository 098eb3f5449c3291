"""A second-language client: knows only the gRPC reflection protocol.

Everything about osp's API (services, messages, fields) is discovered from
the server at run time; only reflection.proto is compiled locally.
Usage: reflection_client.py HOST:PORT CA_FILE TOKEN REFLECTION_PROTO_ROOT
"""
import atexit
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf import message_factory

server, ca_file, token, proto_root = sys.argv[1:5]
out = tempfile.mkdtemp()
atexit.register(shutil.rmtree, out, ignore_errors=True)
subprocess.run([sys.executable, '-m', 'grpc_tools.protoc', f'-I{proto_root}', f'--python_out={out}',
                'grpc/reflection/v1alpha/reflection.proto'], check=True)
# The generated module sits under grpc/…, which the grpc package shadows: load it by path.
spec = importlib.util.spec_from_file_location('reflection_pb2', f'{out}/grpc/reflection/v1alpha/reflection_pb2.py')
rpb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rpb)

with open(ca_file, 'rb') as f:
    creds = grpc.ssl_channel_credentials(root_certificates=f.read())
channel = grpc.secure_channel(server, creds)
info = channel.stream_stream('/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
                             request_serializer=rpb.ServerReflectionRequest.SerializeToString,
                             response_deserializer=rpb.ServerReflectionResponse.FromString)

def ask(**kw):
    return next(info(iter([rpb.ServerReflectionRequest(**kw)]), timeout=20))

services = [s.name for s in ask(list_services='').list_services_response.service]
pool = descriptor_pool.DescriptorPool()
seen = set()
pending = list(ask(file_containing_symbol='osp.v1.NodeService').file_descriptor_response.file_descriptor_proto)
while pending:
    fd = descriptor_pb2.FileDescriptorProto.FromString(pending.pop(0))
    if fd.name in seen:
        continue
    missing = [d for d in fd.dependency if d not in seen]
    if missing:
        for d in missing:
            pending.extend(ask(file_by_filename=d).file_descriptor_response.file_descriptor_proto)
        pending.append(fd.SerializeToString())
        continue
    pool.Add(fd)
    seen.add(fd.name)

method = pool.FindServiceByName('osp.v1.NodeService').FindMethodByName('ListNodes')
factory = message_factory.MessageFactory(pool)  # Debian's protobuf 4.21 predates GetMessageClass
Req = factory.GetPrototype(method.input_type)
Res = factory.GetPrototype(method.output_type)
call = channel.unary_unary('/osp.v1.NodeService/ListNodes', request_serializer=Req.SerializeToString,
                           response_deserializer=Res.FromString)
res = call(Req(), metadata=[('authorization', f'Bearer {token}')], timeout=20)
doc = json_format.MessageToDict(res, preserving_proto_field_name=True)
print(json.dumps({
    'services': services,
    'names': [n['name'] for n in doc.get('nodes', [])],
    'passwords': [n.get('driver_info', {}).get('password') for n in doc.get('nodes', [])],
}))
