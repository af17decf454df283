"""Register-KodoApp.ps1 cannot run here (no PowerShell runtime installs from the registries this
machine reaches), so it is parsed with tree-sitter's PowerShell grammar and its structure checked:
each test below is one promise of issue 16; its output's exact shape must be accepted by the portal.
"""

import json
import re
from pathlib import Path

import pytest
import tree_sitter_powershell
from django.core.files.uploadedfile import SimpleUploadedFile
from tree_sitter import Language, Node, Parser

from o365.kodo_settings import TEXT_KEYS
from o365.models import Configuration

FIXTURE = Path(__file__).parent / "fixtures" / "KodoADSettings.script.json"
SCRIPT = Path(__file__).parents[2] / "scripts" / "Register-KodoApp.ps1"
PARSER = Parser(Language(tree_sitter_powershell.language()))
# Cmdlets that change the tenant or the machine; none may run before the tenant is confirmed.
CHANGES = (
    "New-MgApplication",
    "Update-MgApplication",
    "Add-MgApplicationPassword",
    "New-MgServicePrincipal",
    "New-MgServicePrincipalAppRoleAssignment",
    "New-SelfSignedCertificate",
    "Export-PfxCertificate",
)
CONSOLE = (
    "Write-Host",
    "Write-Output",
    "Write-Warning",
    "Write-Verbose",
    "Write-Information",
    "Write-Debug",
    "Write-Error",
    "Out-Host",
    "Out-Default",
    "echo",
)
SECRETS = ("$secret", "$pfxPassword", "$securePassword", "$pfxBase64", "$settings")
# -Cloud (Get-MgEnvironment's names) -> the Cloud the script writes to KodoADSettings.json.
SCRIPT_CLOUDS = {
    "Global": "Global",
    "USGov": "USGovernment",
    "USGovDoD": "USGovernmentDoD",
    "China": "China",
}
SAFE_MEMBERS = {
    "$secret": {"EndDateTime", "KeyId"},
    "$settings": {
        "TenantId",
        "ClientId",
        "Cloud",
        "CertificateThumbprint",
        "CertificateNotAfter",
        "AppName",
    },
}


# --- A small view of the PowerShell syntax tree ---------------------------------------------------


def walk(node: Node):
    yield node
    for child in node.children:
        yield from walk(child)


def text(node: Node) -> str:
    return node.text.decode()


class Command:
    def __init__(self, node: Node):
        self.node = node
        self.name = text(node.child_by_field_name("command_name") or node.children[0])
        self.params: dict[str, str | None] = {}
        elements = next((c for c in node.children if c.type == "command_elements"), None)
        parts = [
            c for c in (elements.children if elements else []) if c.type != "command_argument_sep"
        ]
        for index, part in enumerate(parts):
            if part.type == "command_parameter":
                following = parts[index + 1] if index + 1 < len(parts) else None
                value = (
                    text(following)
                    if following is not None and following.type != "command_parameter"
                    else None
                )
                self.params[text(part).lstrip("-").lower()] = value

    @property
    def start(self) -> int:
        return self.node.start_byte

    def inside(self, *types: str) -> bool:
        return any(a.type in types for a in ancestors(self.node))


def ancestors(node: Node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


def tree(source: str | None = None) -> Node:
    return PARSER.parse((source if source is not None else SCRIPT.read_text()).encode()).root_node


def commands(root: Node, name: str | None = None) -> list[Command]:
    found = [
        Command(n)
        for n in walk(root)
        if n.type == "command" and n.children and n.children[0].type == "command_name"
    ]
    return [c for c in found if name is None or c.name.lower() == name.lower()]


def function(root: Node, name: str) -> Node:
    return next(
        n
        for n in walk(root)
        if n.type == "function_statement"
        and text(n.child_by_field_name("function_name") or n.children[1]) == name
    )


def enclosing_function(node: Node) -> str | None:
    for a in ancestors(node):
        if a.type == "function_statement":
            return text(a.children[1])
    return None


def retried(command: Command) -> bool:
    """The command runs inside a script block given to Invoke-WithRetry -Action."""
    for a in ancestors(command.node):
        if a.type == "command" and text(a.children[0]) == "Invoke-WithRetry":
            return True
    return False


def assigned_value(root: Node, variable: str) -> list[str]:
    return [
        text(n.children[2])
        for n in walk(root)
        if n.type == "assignment_expression" and text(n.children[0]).strip() == variable
    ]


def outer_try(root: Node) -> Node:
    statements = next(c for c in root.children if c.type == "statement_list")
    return next(c for c in statements.children if c.type == "try_statement")


def finally_block(try_node: Node) -> Node:
    return next(c for c in try_node.children if c.type == "finally_clause")


def param_block(root: Node) -> str:
    return text(next(n for n in walk(root) if n.type == "param_block"))


# --- The script -----------------------------------------------------------------------------------


def test_the_script_is_valid_powershell():
    root = tree()
    broken = [n for n in walk(root) if n.type == "ERROR" or n.is_missing]
    assert not broken, [(n.start_point, text(n)[:80]) for n in broken]
    assert tree("try { $a = 1 ").has_error  # the parser does see a broken script


def test_the_client_secret_is_created_last_and_removed_unless_it_is_written():
    root = tree()
    [add] = commands(root, "Add-MgApplicationPassword")
    for name in (
        "New-SelfSignedCertificate",
        "Export-PfxCertificate",
        "New-MgServicePrincipalAppRoleAssignment",
        "New-MgServicePrincipal",
    ):
        assert all(c.start < add.start for c in commands(root, name)), f"{name} after the secret"
    upload = [c for c in commands(root, "Update-MgApplication") if "keycredentials" in c.params]
    assert upload and all(c.start < add.start for c in upload)

    # What exists is written as soon as it exists: the certificate once uploaded, then the secret.
    writes = sorted(c.start for c in commands(root, "Write-KodoSettings"))
    assert len(writes) == 2
    assert upload[0].start < writes[0] < add.start < writes[1]

    # The statement that creates the secret is followed (after flag assignments only) by a try
    # whose body writes the file and whose catch/finally removes the secret by its KeyId.
    statement = next(
        a
        for a in ancestors(add.node)
        if a.parent is not None
        and a.parent.type == "statement_list"
        and enclosing_function(a) is None
        and not retried_block(a)
    )
    sibling = statement.next_named_sibling
    while sibling is not None and sibling.type != "try_statement":
        assert re.fullmatch(r"\$\w+ = \$(false|true|null)", text(sibling)), text(sibling)
        sibling = sibling.next_named_sibling
    assert sibling is not None, "no try after the secret"
    body = sibling.children[1]
    assert commands(body, "Write-KodoSettings")
    cleanup = [c for c in sibling.children if c.type in ("catch_clauses", "finally_clause")]
    removals = [c for part in cleanup for c in commands(part, "Remove-MgApplicationPassword")]
    assert removals and removals[0].params.get("keyid") == "$secret.KeyId"


def retried_block(node: Node) -> bool:
    return any(a.type == "script_block_expression" for a in ancestors(node))


def test_the_certificate_is_exported_by_store_path_and_then_removed_from_the_store():
    root = tree()
    [create] = commands(root, "New-SelfSignedCertificate")
    assert create.params["certstorelocation"] == "'Cert:\\CurrentUser\\My'"
    [export] = commands(root, "Export-PfxCertificate")
    assert export.params["cert"].startswith('"Cert:\\CurrentUser\\My\\$'), export.params["cert"]

    [delete] = commands(function(root, "Remove-StoreCertificate"), "Remove-Item")
    assert "deletekey" in delete.params
    assert "Cert:\\CurrentUser\\My\\$Thumbprint" in text(function(root, "Remove-StoreCertificate"))
    calls = [c for c in commands(root, "Remove-StoreCertificate")]
    assert any(c.start > export.start and not c.inside("finally_clause") for c in calls)
    assert any(c.inside("finally_clause") for c in calls), "not removed when the script fails"


def test_replication_errors_are_retried_with_backoff_for_a_few_minutes():
    root = tree()
    [patterns] = assigned_value(root, "$TransientErrors")
    for message in ("Not a valid reference update", "does not exist", "not found"):
        assert message.lower() in patterns.lower()
    [budget] = assigned_value(root, "$RetryBudgetSeconds")
    waits, delay = [], 2
    while sum(waits) + delay <= int(budget):  # as Invoke-WithRetry: stop before overrunning
        waits.append(delay)
        delay = min(delay * 2, 30)
    assert 120 <= sum(waits) <= 600 and len(waits) >= 6, waits

    retry = text(function(root, "Invoke-WithRetry"))
    assert "$RetryBudgetSeconds" in retry and "$TransientErrors" in retry
    assert "Start-Sleep -Seconds $delay" in retry and "$delay * 2" in retry

    for name in (
        "Get-MgServicePrincipal",
        "New-MgServicePrincipal",
        "Get-MgServicePrincipalAppRoleAssignment",
        "New-MgServicePrincipalAppRoleAssignment",
        "Add-MgApplicationPassword",
    ):
        found = commands(root, name)
        assert found and all(retried(c) for c in found), f"{name} is not retried"
    assert all(
        retried(c) for c in commands(root, "Update-MgApplication") if "keycredentials" in c.params
    )


def test_the_sign_in_is_process_scoped_confirmed_and_disconnected():
    root = tree()
    [connect] = commands(root, "Connect-MgGraph")
    assert connect.params["contextscope"] == "Process"
    assert connect.params["environment"] == "$Cloud"
    main = outer_try(root)
    body = main.children[1]
    assert body.start_byte < connect.start and connect.node.end_byte < body.end_byte
    assert commands(finally_block(main), "Disconnect-MgGraph")

    [ask] = commands(root, "Read-Host")
    shown = [c for c in commands(root, "Write-Host") if "$tenant" in text(c.node)]
    assert shown and connect.start < shown[0].start < ask.start
    condition = next(a for a in ancestors(ask.node) if a.type == "if_statement")
    assert re.match(r"if \(-not \$Force\)", text(condition))
    assert re.search(r"\[Alias\('Yes'\)\] \[switch\] \$Force", param_block(root))
    for name in CHANGES:
        assert all(c.start > ask.start for c in commands(root, name)), f"{name} before confirming"


def test_no_secret_is_written_to_the_console():
    root = tree()
    problems = []
    for command in (c for name in CONSOLE for c in commands(root, name)):
        for node in walk(command.node):
            if node.type != "variable" or text(node) not in SECRETS:
                continue
            parent = node.parent
            member = (
                text(parent.children[2])
                if parent.type == "member_access" and parent.children[0] == node
                else None
            )
            if member not in SAFE_MEMBERS.get(text(node), set()):
                problems.append(text(command.node)[:100])
        if re.search(r"SecretText|\.ClientSecret|\.CertificatePassword", text(command.node)):
            problems.append(text(command.node)[:100])
    # A bare expression statement prints its value.
    for statement in walk(root):
        if (
            statement.type != "pipeline"
            or statement.parent.type != "statement_list"
            or any(a.type == "sub_expression" for a in ancestors(statement))
        ):
            continue
        inner = list(walk(statement))
        if not any(n.type in ("command", "assignment_expression") for n in inner) and any(
            text(n) in SECRETS for n in inner if n.type == "variable"
        ):
            problems.append(text(statement)[:100])
    assert not problems, problems


def test_each_cloud_is_passed_to_connect_and_written_as_cloud():
    root = tree()
    offered = re.search(
        r"\[ValidateSet\(([^)]*)\)\] \[string\] \$Cloud = 'Global'", param_block(root)
    ).group(1)
    # Get-MgEnvironment's names, which Connect-MgGraph -Environment takes.
    assert re.findall(r"'(\w+)'", offered) == ["Global", "USGov", "USGovDoD", "China"]
    [names] = assigned_value(root, "$KodoCloudNames")
    assert dict(re.findall(r"(\w+) = '(\w+)'", names)) == SCRIPT_CLOUDS
    assert commands(root, "Connect-MgGraph")[0].params["environment"] == "$Cloud"
    block = settings_block()
    assert re.search(r"^\s*Cloud\s*=\s*\[string\] \$KodoCloudNames\[\$Cloud\]", block, re.M)


def test_the_graph_modules_are_a_pinned_range_and_the_same_version():
    root = tree()
    [minimum] = assigned_value(root, "$GraphModuleMinimum")
    [maximum] = assigned_value(root, "$GraphModuleMaximum")
    version = lambda s: tuple(int(p) for p in re.search(r"'([\d.]+)'", s).group(1).split("."))  # noqa: E731
    assert version(minimum) > (2, 26, 1), "2.26.0 and 2.26.1 broke Connect-MgGraph"
    assert (2, 0, 0) < version(maximum) < (3, 0, 0)
    for install in commands(root, "Install-Module"):
        pinned = (
            install.params.get("minimumversion") == "$GraphModuleMinimum"
            and install.params.get("maximumversion") == "$GraphModuleMaximum"
        )
        assert pinned or install.params.get("requiredversion") == "$version", text(install.node)
    imports = {
        c.params["name"]: c.params.get("requiredversion") for c in commands(root, "Import-Module")
    }
    assert imports == {
        "Microsoft.Graph.Authentication": "$version",
        "Microsoft.Graph.Applications": "$version",
    }
    script = SCRIPT.read_text()
    assert re.search(r"if \(\$authVersion -ne \$appsVersion\) \{\s*throw", script)


def test_the_certificate_subject_quotes_the_app_name():
    root = tree()
    [create] = commands(root, "New-SelfSignedCertificate")
    assert create.params["subject"] == '"CN=$(ConvertTo-X500Value $AppName)"'
    quote = text(function(root, "ConvertTo-X500Value"))
    assert "return '\"' + $Value.Replace('\"', '\"\"') + '\"'" in quote
    # What that does to names CertStrToName would otherwise split (, ; +) or misread (# " =).
    for name in ("Kodo, Backup", "A+B; C", '#1 "best" = backup'):
        subject = 'CN="' + name.replace('"', '""') + '"'
        assert x500_values(subject) == [("CN", name)]


def x500_values(subject: str) -> list[tuple[str, str]]:
    """Split an X.500 string as CertStrToName documents it: , ; + separate values outside quotes,
    a quoted value is literal, and "" inside quotes is one quote."""
    values, key, value, quoted, in_value = [], "", "", False, False
    i = 0
    while i < len(subject):
        char = subject[i]
        if quoted and char == '"' and subject[i + 1 : i + 2] == '"':
            value += '"'
            i += 1
        elif char == '"' and (quoted or (in_value and not value.strip())):
            quoted = not quoted
        elif quoted:
            value += char
        elif char in ",;+":
            values.append((key.strip(), value.strip()))
            key, value, in_value = "", "", False
        elif char == "=" and not in_value:
            in_value = True
        elif in_value:
            value += char
        else:
            key += char
        i += 1
    values.append((key.strip(), value.strip()))
    return values


def test_backup_only_asks_for_read_permissions_only():
    root = tree()
    assert re.search(r"\[switch\] \$BackupOnly", param_block(root))
    default, backup_only = assigned_value(root, "$KodoRoles")
    assert "'Files.ReadWrite.All'" in default
    assert re.findall(r"'([\w.]+)'", backup_only) == ["User.Read.All", "Files.Read.All"]
    second = next(
        n
        for n in walk(root)
        if n.type == "assignment_expression" and text(n.children[2]) == backup_only
    )
    condition = next(a for a in ancestors(second) if a.type == "if_statement")
    assert text(condition).startswith("if ($BackupOnly)")
    # Every permission the app asks for and every role granted comes from $KodoRoles.
    assert "foreach ($value in $KodoRoles)" in SCRIPT.read_text()


# --- Its output, read by the portal ---------------------------------------------------------------


def settings_block() -> str:
    return re.search(
        r"\$settings = \[ordered\]\s*@\{(.*?)\n\s*\}", SCRIPT.read_text(), re.DOTALL
    ).group(1)


def test_the_script_writes_every_key_the_portal_reads():
    written = set(re.findall(r"^\s*(\w+)\s*=", settings_block(), re.MULTILINE))
    fixture_keys = set(json.loads(FIXTURE.read_text(encoding="utf-8-sig")))
    assert written == fixture_keys
    assert fixture_keys <= set(TEXT_KEYS)


def upload(client, world, values: dict | None = None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(values).encode()
    return client.post(
        f"/o/{world.org_a.code}/services/office365/configuration/new/",
        {
            "name": "From the script",
            "cloud": "global",
            "settings_file": SimpleUploadedFile("KodoADSettings.json", body, "application/json"),
        },
    )


def test_the_portal_accepts_the_scripts_file(admin_a_client, world):
    response = upload(admin_a_client, world, raw=FIXTURE.read_bytes())
    assert response.status_code == 302, response.content.decode()[:2000]
    configuration = Configuration.objects.get()
    values = json.loads(FIXTURE.read_text(encoding="utf-8-sig"))
    assert str(configuration.tenant_id) == values["TenantId"]
    assert configuration.certificate_thumbprint == values["CertificateThumbprint"]
    assert configuration.has_client_secret and configuration.has_certificate


def test_the_portal_accepts_the_file_written_before_the_secret_exists(admin_a_client, world):
    values = {**json.loads(FIXTURE.read_text(encoding="utf-8-sig")), "ClientSecret": ""}
    response = upload(admin_a_client, world, values)
    assert response.status_code == 302, response.content.decode()[:2000]
    configuration = Configuration.objects.get()
    assert configuration.has_certificate and not configuration.has_client_secret


@pytest.mark.parametrize(
    ("cloud", "kodo_cloud"),
    [
        ("Global", Configuration.Cloud.GLOBAL),
        ("USGov", Configuration.Cloud.US_GOVERNMENT),
        ("China", Configuration.Cloud.CHINA),
    ],
)
def test_the_portal_reads_the_cloud_the_script_writes(admin_a_client, world, cloud, kodo_cloud):
    values = {**json.loads(FIXTURE.read_text(encoding="utf-8-sig")), "Cloud": SCRIPT_CLOUDS[cloud]}
    response = upload(admin_a_client, world, values)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Configuration.objects.get().cloud.key == kodo_cloud


def test_a_dod_file_is_refused_rather_than_read_as_another_cloud(admin_a_client, world):
    # Kodo has no US Government DoD cloud built in (its Graph host is dod-graph.microsoft.us).
    values = {
        **json.loads(FIXTURE.read_text(encoding="utf-8-sig")),
        "Cloud": SCRIPT_CLOUDS["USGovDoD"],
    }
    response = upload(admin_a_client, world, values)
    assert response.status_code == 200
    assert "USGovernmentDoD" in response.content.decode()
    assert not Configuration.objects.exists()


# --- -SignInApp: the server's "Sign in with Microsoft" app (issue 15) ----------------------------


def test_the_sign_in_app_uses_kodos_reply_url_and_is_multi_tenant():
    from django.urls import reverse

    root = tree()
    params = param_block(root)
    assert re.search(r"\[switch\] \$SignInApp", params)
    assert re.search(r"\[string\] \$PortalUrl", params)
    [reply] = [v for v in assigned_value(root, "$RedirectUri") if "PortalUrl" in v]
    path = re.search(r"'(/[^']+)'", reply).group(1)
    assert path == reverse("organizations:microsoft-callback")
    [audience] = assigned_value(root, "$audience")
    assert re.fullmatch(
        r"if \(\$SignInApp\) \{ 'AzureADMultipleOrgs' \} else \{ 'AzureADMyOrg' \}", audience
    )
    [new_app] = commands(root, "New-MgApplication")
    assert new_app.params["signinaudience"] == "$audience"
    assert "@webArgument" in text(new_app.node)


def test_the_sign_in_app_asks_for_delegated_sign_in_permissions_only():
    root = tree()
    [scopes] = assigned_value(root, "$SignInScopes")
    assert re.findall(r"'([\w.]+)'", scopes) == ["openid", "profile", "email", "User.Read"]
    [access] = assigned_value(root, "$AccessType")
    assert access == "if ($SignInApp) { 'Scope' } else { 'Role' }"
    assert "Oauth2PermissionScopes" in SCRIPT.read_text()
    # No application permission is granted to it: the app-role assignment is in the else branch.
    [grant] = commands(root, "New-MgServicePrincipalAppRoleAssignment")
    branch = next(
        a for a in ancestors(grant.node) if a.type == "if_statement" and "$SignInApp" in text(a)
    )
    assert text(branch).startswith("if ($SignInApp) {")
    assert grant.inside("else_clause") and not commands(branch.children[4])  # if: no command


def test_the_sign_in_app_prints_the_admin_consent_url_and_no_secret():
    script = SCRIPT.read_text()
    assert re.search(
        r"\$\(\$LoginHosts\[\$Cloud\]\)/<tenant>/adminconsent\?client_id=\$\(\$settings\.ClientId\)"
        r"&redirect_uri=\$encodedReply",
        script,
    )
    for name in ("CLIENT_ID", "CLIENT_SECRET", "CERTIFICATE", "CERTIFICATE_PASSWORD"):
        assert f"KODO_MICROSOFT_SIGNIN_{name}" in script
    assert "$OutName = if ($SignInApp) { 'KodoSignIn' } else { 'KodoADSettings' }" in script
