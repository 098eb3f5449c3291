"""A Python grpcio client that reads ospd's errors the standard way.

Sends requests ospd must refuse, reads each refusal's trailing
grpc-status-details-bin as google.rpc.Status (classes compiled here from
Google's field numbers, not from osp's code) and prints one JSON object:
{call: {code, status_code, message, reason, domain, metadata, violations, details_hex}}.
Usage: rich_error_client.py HOST:PORT CA_FILE TOKEN OSP_DESCRIPTOR_SET RPC_PROTO_ROOT
(OSP_DESCRIPTOR_SET: proto/gen/osp.binpb, the FileDescriptorSet buf builds from proto/.)
"""
import atexit
import json
import shutil
import subprocess
import sys
import tempfile

import grpc
import grpc_tools
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

server, ca_file, token, osp_descriptors, rpc_root = sys.argv[1:6]
out = tempfile.mkdtemp()
atexit.register(shutil.rmtree, out, ignore_errors=True)
well_known = f'{grpc_tools.__path__[0]}/_proto'
subprocess.run([sys.executable, '-m', 'grpc_tools.protoc', f'-I{rpc_root}', f'-I{well_known}', f'--python_out={out}',
                'google/rpc/status.proto', 'google/rpc/error_details.proto'], check=True)
sys.path.insert(0, out)
from google.rpc import error_details_pb2, status_pb2  # noqa: E402  (generated above)

# osp's messages come from the built descriptor set: Debian's grpc_tools (protoc 3.6)
# cannot compile proto3 `optional`, which osp's protos use.
pool = descriptor_pool.DescriptorPool()
with open(osp_descriptors, 'rb') as f:
    files = {fd.name: fd for fd in descriptor_pb2.FileDescriptorSet.FromString(f.read()).file}
added = set()
def add(name):
    if name in added:
        return
    for dep in files[name].dependency:
        add(dep)
    pool.Add(files[name])
    added.add(name)
for name in files:
    add(name)
factory = message_factory.MessageFactory(pool)  # Debian's protobuf 4.21 predates GetMessageClass
def message(name):
    return factory.GetPrototype(pool.FindMessageTypeByName(f'osp.v1.{name}'))

with open(ca_file, 'rb') as f:
    creds = grpc.ssl_channel_credentials(root_certificates=f.read())
channel = grpc.secure_channel(server, creds)
md = [('authorization', f'Bearer {token}')]


def refusal(method, req):
    call = channel.unary_unary(f'/osp.v1.NodeService/{method}', request_serializer=type(req).SerializeToString,
                               response_deserializer=bytes)
    try:
        call(req, metadata=md, timeout=20)
    except grpc.RpcError as e:
        raw = dict(e.trailing_metadata() or ()).get('grpc-status-details-bin')
        result = {'code': e.code().name, 'message': e.details(), 'details_hex': raw.hex() if raw else None}
        if raw:
            st = status_pb2.Status.FromString(raw)
            result.update(status_code=st.code, status_message=st.message, violations=[], type_urls=[])
            for any_ in st.details:
                result['type_urls'].append(any_.type_url)
                if any_.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    any_.Unpack(info)
                    result.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
                elif any_.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    br = error_details_pb2.BadRequest()
                    any_.Unpack(br)
                    result['violations'] += [{'field': v.field, 'description': v.description} for v in br.field_violations]
        return result
    raise SystemExit(f'{method} was accepted; expected a refusal')


bad_mac = message('CreateNodeRequest')(spec=message('NodeSpec')(
    name='py-0', ports=['52:54:00:zz:00:01'], driver='fake', driver_info={'address': '192.0.2.1'}))
bad_file = json.dumps({'nodes': [
    {'name': 'py-1', 'pm_type': 'telepathy', 'pm_addr': '192.0.2.2', 'mac': ['52:54:00:aa:01:01']},
    {'name': 'py-2', 'pm_type': 'ipmi', 'pm_addr': '192.0.2.3', 'mac': ['not-a-mac']},
]})
print(json.dumps({
    'create': refusal('CreateNode', bad_mac),
    'import': refusal('ImportNodes', message('ImportNodesRequest')(content=bad_file, source='py.json')),
    'missing': refusal('GetNode', message('GetNodeRequest')(id='no-such-node')),
}))
