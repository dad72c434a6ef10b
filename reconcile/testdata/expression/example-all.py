# Managed by akminio: rendered from its bindings (match: all).
# Changes made here are overwritten on akminio's next run.
if not request.user.is_authenticated or request.user.pk is None:
    return None
bindings = [
    ("Minio admins", ["consoleAdmin"]),
    ("Minio users", ["readonly", "my-custom-policy"]),
    ("Reporting", ["bucket-reports-reader", "legacy-auditors"]),
]
claim = []
for group, policies in bindings:
    if ak_is_group_member(request.user, name=group):
        claim += [p for p in policies if p not in claim]
if not claim:
    return None
return {"policy": claim}
