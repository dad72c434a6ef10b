# Managed by akminio: rendered from its bindings (match: first).
# Changes made here are overwritten on akminio's next run.
if not request.user.is_authenticated or request.user.pk is None:
    return None
bindings = [
    ("Minio admins", ["consoleAdmin"]),
    ("Minio users", ["readonly", "my-custom-policy"]),
    ("Reporting", ["bucket-reports-reader", "legacy-auditors"]),
]
for group, policies in bindings:
    if ak_is_group_member(request.user, name=group):
        return {"policy": policies}
return None
