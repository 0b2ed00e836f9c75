"""Drives the bridge's HTTP API (update, read, list) with SailPoint's own Python SDK (PyPI `sailpoint`, 1.x) and prints
what the SDK parsed, as JSON, for the Swift test to check.

Usage: sdk_check.py BASE_URL ACCESS_TOKEN TASK_ID
"""
import json
import sys
import warnings

from sailpoint.configuration import Configuration, ConfigurationParams
from sailpoint.v2026.api.task_management_api import TaskManagementApi
from sailpoint.v2026.api_client import ApiClient
from sailpoint.v2026.models.json_patch_operation import JsonPatchOperation
from sailpoint.v2026.models.json_patch_operation_value import JsonPatchOperationValue

warnings.simplefilter("ignore")
base_url, token, task_id = sys.argv[1:4]
params = ConfigurationParams()
params.base_url = base_url
params.access_token = token
configuration = Configuration(params)
configuration.experimental = True

with ApiClient(configuration) as client:
    api = TaskManagementApi(client)
    operations = [
        JsonPatchOperation(op="replace", path="/percentComplete", value=JsonPatchOperationValue(100)),
        JsonPatchOperation(op="replace", path="/completionStatus", value=JsonPatchOperationValue("Success")),
        JsonPatchOperation(op="replace", path="/completed", value=JsonPatchOperationValue("2026-11-28T12:00:00.000Z")),
    ]
    updated = api.update_task_status(id=task_id, json_patch_operation=operations)
    read = api.get_task_status(id=task_id)
    # SailPoint's getTaskStatusList: a filtered, counted page.
    listed = api.get_task_status_list_with_http_info(limit=1, offset=0, count=True, filters='completionStatus eq "SUCCESS"', sorters="-created")
    total = next((v for k, v in (listed.headers or {}).items() if k.lower() == "x-total-count"), None)
    print(json.dumps({
        "updated": {"id": updated.id, "percentComplete": updated.percent_complete,
                    "completionStatus": str(updated.completion_status.value if hasattr(updated.completion_status, "value") else updated.completion_status),
                    "completed": updated.completed.isoformat() if updated.completed else None,
                    "type": str(updated.type.value if hasattr(updated.type, "value") else updated.type)},
        "read": {"id": read.id, "percentComplete": read.percent_complete, "progress": read.progress},
        "list": {"ids": [task.id for task in listed.data], "total": total, "status": listed.status_code},
    }))
