<#
.SYNOPSIS
    Registers the Kodo backup application in a Microsoft 365 tenant and writes KodoADSettings.json.

.DESCRIPTION
    Creates (or reuses, by display name) an app registration with the Microsoft Graph application
    permissions Kodo needs (User.Read.All, Files.Read.All, and Files.ReadWrite.All for restores),
    adds a self-signed certificate and a client secret to it, grants admin consent, and writes the
    values Kodo asks for to KodoADSettings.json (and the certificate to KodoADSettings.pfx) in the
    current folder. Every run adds a NEW certificate and a NEW secret; older ones stay valid until
    they expire. KodoADSettings.json holds secrets: delete it once you have uploaded it to Kodo.

    The sign-in lasts only as long as this script (process scope, disconnected at the end), the
    tenant is shown and confirmed before anything changes, the certificate's private key is removed
    from the certificate store once it is in KodoADSettings.pfx, secrets are never printed, and the
    client secret is created last: if it cannot be written to KodoADSettings.json it is removed again.

.PARAMETER TenantId
    Tenant to sign in to (GUID or contoso.onmicrosoft.com). Default: the tenant of the account you sign in with.

.PARAMETER Cloud
    The Microsoft cloud of the tenant: Global (default), USGov (GCC High), USGovDoD or China (21Vianet).
    Passed to Connect-MgGraph -Environment and written to KodoADSettings.json as Cloud.

.PARAMETER AppName
    Display name of the app registration. An existing registration with this name is reused.

.PARAMETER SecretYears
    Lifetime of the new client secret, in years.

.PARAMETER CertificateYears
    Lifetime of the new self-signed certificate, in years.

.PARAMETER BackupOnly
    Ask for read permissions only (User.Read.All, Files.Read.All). Restores then need
    Files.ReadWrite.All granted later; TEST CONNECTION in Kodo names it while it is missing.

.PARAMETER SignInApp
    Register the server's "Sign in with Microsoft" app instead (run once, by the service provider,
    in its own tenant): multi-tenant, the delegated permissions openid, profile, email and
    User.Read, the reply URL <PortalUrl>/accounts/microsoft/callback/, and KodoSignIn.json /
    KodoSignIn.pfx instead of KodoADSettings.*. Its ClientId and ClientSecret (or the PFX and its
    password) go into Kodo's KODO_MICROSOFT_SIGNIN_* settings. No application permission is granted:
    each customer tenant consents once, by its administrator opening the admin consent URL printed
    at the end (or by each user on their first sign-in, where the tenant allows user consent).

.PARAMETER PortalUrl
    With -SignInApp: the https:// address people open Kodo at (Kodo's KODO_BASE_URL).

.PARAMETER Force
    Do not ask to confirm the tenant before changing it (for automation). Alias: -Yes.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File .\Register-KodoApp.ps1 -TenantId contoso.onmicrosoft.com

.EXAMPLE
    pwsh -ExecutionPolicy Bypass -File .\Register-KodoApp.ps1 -Cloud USGov -BackupOnly

.EXAMPLE
    pwsh -ExecutionPolicy Bypass -File .\Register-KodoApp.ps1 -SignInApp -PortalUrl https://backup.example.com
#>
#Requires -Version 5.1
[CmdletBinding()]
param(
    [string] $TenantId,
    [ValidateSet('Global', 'USGov', 'USGovDoD', 'China')] [string] $Cloud = 'Global',
    [ValidateNotNullOrEmpty()] [string] $AppName = 'Kodo Backup',
    [ValidateRange(1, 10)] [int] $SecretYears = 2,
    [ValidateRange(1, 10)] [int] $CertificateYears = 2,
    [switch] $BackupOnly,
    [switch] $SignInApp,
    [string] $PortalUrl,
    [Alias('Yes')] [switch] $Force
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$GraphAppId = '00000003-0000-0000-c000-000000000000'  # Microsoft Graph, the same in every tenant
$KodoRoles = @('User.Read.All', 'Files.Read.All', 'Files.ReadWrite.All')
if ($BackupOnly) { $KodoRoles = @('User.Read.All', 'Files.Read.All') }
# -SignInApp: delegated permissions (people sign in to Kodo), consented in each tenant that uses it.
$SignInScopes = @('openid', 'profile', 'email', 'User.Read')
$Permissions = if ($SignInApp) { $SignInScopes } else { $KodoRoles }
$AccessType = if ($SignInApp) { 'Scope' } else { 'Role' }
# Where each cloud's people sign in (the admin consent URL of -SignInApp).
$LoginHosts = @{ Global = 'https://login.microsoftonline.com'; USGov = 'https://login.microsoftonline.us'; USGovDoD = 'https://login.microsoftonline.us'; China = 'https://login.chinacloudapi.cn' }
$RedirectUri = ''
if ($SignInApp) {
    if ($PortalUrl -notmatch '^https://[^/?#]+(/[^?#]*)?$') {
        throw '-SignInApp needs -PortalUrl, the https:// address people open Kodo at (Kodo''s KODO_BASE_URL), for example https://backup.example.com.'
    }
    if (-not $PSBoundParameters.ContainsKey('AppName')) { $AppName = 'Kodo Sign-in' }
    # Kodo's reply URL: KODO_BASE_URL + /accounts/microsoft/callback/ (organizations/urls.py).
    $RedirectUri = $PortalUrl.TrimEnd('/') + '/accounts/microsoft/callback/'
}
# Connect-MgGraph -Environment name (Get-MgEnvironment) -> the Cloud value Kodo reads from the JSON.
$KodoCloudNames = @{ Global = 'Global'; USGov = 'USGovernment'; USGovDoD = 'USGovernmentDoD'; China = 'China' }
# Microsoft.Graph 2.x from 2.27.0 on: 2.26.0 and 2.26.1 broke Connect-MgGraph; 3.x is untested.
$GraphModuleMinimum = [version] '2.27.0'
$GraphModuleMaximum = [version] '2.999.999'
# Entra ID replicates a new app, service principal or role assignment for seconds to minutes.
$RetryBudgetSeconds = 240
$TransientErrors = 'does not exist|not found|NotFound|does not reference a valid application|Not a valid reference update|TooManyRequests|Too Many Requests|ServiceUnavailable|Service Unavailable'
# .NET resolves relative paths against the process folder, not PowerShell's current location.
$OutFolder = (Get-Location -PSProvider FileSystem).ProviderPath
$OutName = if ($SignInApp) { 'KodoSignIn' } else { 'KodoADSettings' }
$JsonPath = Join-Path $OutFolder "$OutName.json"
$PfxPath = Join-Path $OutFolder "$OutName.pfx"

function Invoke-WithRetry([scriptblock] $Action, [string] $What) {
    # A fresh object is often "not found" (or "Not a valid reference update") by the next call.
    # Retry those errors with exponential backoff (2, 4, 8, 16, 30, 30... s) for $RetryBudgetSeconds.
    $deadline = [DateTime]::UtcNow.AddSeconds($RetryBudgetSeconds)
    $delay = 2
    for ($attempt = 1; ; $attempt++) {
        try { return & $Action }
        catch {
            $message = $_.Exception.Message
            if ($message -notmatch $TransientErrors -or [DateTime]::UtcNow.AddSeconds($delay) -gt $deadline) { throw }
            Write-Host "  $What failed (attempt $($attempt): $message); retrying in $delay s..." -ForegroundColor DarkYellow
            Start-Sleep -Seconds $delay
            $delay = [Math]::Min($delay * 2, 30)
        }
    }
}

function New-StrongPassword([int] $Length = 32) {
    # Letters and digits only, so the password survives copy and paste and JSON escaping unchanged.
    $alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
    $rng = [System.Security.Cryptography.RandomNumberGenerator]::Create()
    $byte = New-Object byte[] 1
    $chars = New-Object System.Text.StringBuilder
    while ($chars.Length -lt $Length) {
        $rng.GetBytes($byte)
        if ($byte[0] -lt 248) { [void] $chars.Append($alphabet[$byte[0] % 62]) }  # 248 = 4 * 62: no modulo bias
    }
    $rng.Dispose()
    return $chars.ToString()
}

function ConvertTo-X500Value([string] $Value) {
    # CertStrToName splits on , ; + and reads = < > # specially; a value in double quotes (inner
    # quotes doubled) is taken literally, so "Kodo, Backup" stays one common name.
    return '"' + $Value.Replace('"', '""') + '"'
}

function Remove-StoreCertificate([string] $Thumbprint) {
    # The PFX file is the copy Kodo needs; the exportable private key must not stay in the store.
    $path = "Cert:\CurrentUser\My\$Thumbprint"
    try { if (Test-Path -Path $path) { Remove-Item -Path $path -DeleteKey } }
    catch { Write-Warning "Could not remove certificate $Thumbprint from the store ($($_.Exception.Message)). Remove it with: Remove-Item $path -DeleteKey" }
}

function Write-KodoSettings($Settings) {
    $json = $Settings | ConvertTo-Json
    [System.IO.File]::WriteAllText($JsonPath, $json, [System.Text.UTF8Encoding]::new($false))
}

function Write-ManualConsentSteps {
    Write-Host ''
    Write-Host 'Admin consent could not be granted automatically. Grant it in the portal:' -ForegroundColor Yellow
    Write-Host '  1. Sign in to the Microsoft Entra admin center (https://entra.microsoft.com) or the Azure portal as a Global Administrator'
    Write-Host '  2. Select "Microsoft Entra ID" (formerly "Azure Active Directory")'
    Write-Host '  3. Go to "App registrations" > "All applications"'
    Write-Host "  4. Click the application name ""$AppName"""
    Write-Host '  5. Select "API permissions"'
    Write-Host '  6. Click "Grant admin consent for <your organization>" and confirm with "Yes"'
    Write-Host ''
}

# --- Modules -------------------------------------------------------------------------------------
function Get-GraphModuleVersions([string] $Name) {
    @(Get-Module -ListAvailable -Name $Name | ForEach-Object { $_.Version } |
        Where-Object { $_ -ge $GraphModuleMinimum -and $_ -le $GraphModuleMaximum } | Sort-Object -Descending)
}

if ($PSVersionTable.PSEdition -ne 'Core') {
    # The Microsoft Graph PowerShell SDK needs .NET Framework 4.7.2 (release 461808) under Windows PowerShell.
    $netFramework = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full' -Name Release -ErrorAction SilentlyContinue
    if (-not $netFramework -or $netFramework.Release -lt 461808) {
        throw 'Windows PowerShell 5.1 needs .NET Framework 4.7.2 or later for the Microsoft Graph PowerShell SDK. Install it, or run the script with PowerShell 7 (pwsh).'
    }
}
# The PowerShell Gallery only accepts TLS 1.2, which Windows PowerShell 5.1 does not enable by default.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
# Applications and Authentication must be the same version: each Applications release is built
# against the Authentication of the same release, and mixing them fails with "Method not found".
$authVersions = @(Get-GraphModuleVersions 'Microsoft.Graph.Authentication')
$usable = @(Get-GraphModuleVersions 'Microsoft.Graph.Applications' | Where-Object { $authVersions -contains $_ })
if ($usable.Count -eq 0) {
    Write-Host "Installing Microsoft.Graph.Applications and Microsoft.Graph.Authentication ($GraphModuleMinimum or later 2.x) for the current user..."
    if (-not (Get-PackageProvider -ListAvailable -Name NuGet -ErrorAction SilentlyContinue)) {
        Install-PackageProvider -Name NuGet -MinimumVersion 2.8.5.201 -Scope CurrentUser -Force | Out-Null
    }
    # -Force answers the "untrusted repository" question that PSGallery raises by default.
    Install-Module -Name Microsoft.Graph.Applications -MinimumVersion $GraphModuleMinimum -MaximumVersion $GraphModuleMaximum -Scope CurrentUser -Repository PSGallery -Force
    $version = @(Get-GraphModuleVersions 'Microsoft.Graph.Applications') | Select-Object -First 1
    if (-not $version) { throw "Installing Microsoft.Graph.Applications $GraphModuleMinimum or later 2.x failed; install it with Install-Module and run the script again." }
    if (@(Get-GraphModuleVersions 'Microsoft.Graph.Authentication') -notcontains $version) {
        Install-Module -Name Microsoft.Graph.Authentication -RequiredVersion $version -Scope CurrentUser -Repository PSGallery -Force
    }
}
else {
    $version = $usable[0]
}
$loaded = @(Get-Module -Name Microsoft.Graph.Authentication)
if ($loaded | Where-Object { $_.Version -ne $version }) {
    throw "Microsoft.Graph.Authentication $(($loaded | ForEach-Object Version) -join ', ') is already loaded in this PowerShell session; version $version is needed. Run the script in a new PowerShell window."
}
Import-Module -Name Microsoft.Graph.Authentication -RequiredVersion $version
Import-Module -Name Microsoft.Graph.Applications -RequiredVersion $version
$authVersion = (Get-Module -Name Microsoft.Graph.Authentication).Version
$appsVersion = (Get-Module -Name Microsoft.Graph.Applications).Version
if ($authVersion -ne $appsVersion) {
    throw "Microsoft.Graph.Authentication $authVersion and Microsoft.Graph.Applications $appsVersion do not match. Run the script in a new PowerShell window."
}
Write-Host "Using Microsoft.Graph.Authentication and Microsoft.Graph.Applications $version."

$certificateThumbprint = $null  # set while the new certificate is in Cert:\CurrentUser\My
$pfxWritten = $false
$settingsWritten = $false
$completed = $false
try {
    # --- Sign in ---------------------------------------------------------------------------------
    # Process scope: the token is kept in memory only, never cached on disk for a later run (which
    # could then silently reach another customer's tenant) and gone when PowerShell exits.
    $tenantArgument = @{}
    if ($TenantId) { $tenantArgument.TenantId = $TenantId }
    Connect-MgGraph -Scopes @('Application.ReadWrite.All', 'AppRoleAssignment.ReadWrite.All', 'User.Read') `
        -Environment $Cloud -ContextScope Process -NoWelcome @tenantArgument | Out-Null
    $context = Get-MgContext
    $tenant = [string] $context.TenantId
    $organization = ''
    try {
        $orgs = Invoke-MgGraphRequest -Method GET -Uri 'v1.0/organization?$select=displayName,verifiedDomains'
        foreach ($org in @($orgs.value)) {
            $defaultDomain = @($org.verifiedDomains | Where-Object { $_.isDefault } | ForEach-Object { $_.name })
            $organization = "$($org.displayName) ($($defaultDomain -join ', '))"
        }
    }
    catch { $organization = '(name not readable)' }

    Write-Host ''
    Write-Host 'Signed in:' -ForegroundColor Cyan
    Write-Host "  Account      : $($context.Account)"
    Write-Host "  Organization : $organization"
    Write-Host "  Tenant ID    : $tenant"
    Write-Host "  Cloud        : $Cloud"
    Write-Host "The app registration '$AppName' will be created or updated in this tenant with: $($Permissions -join ', ')."
    if ($SignInApp) { Write-Host "  multi-tenant, for Sign in with Microsoft; reply URL $RedirectUri" }
    if (-not $Force) {
        $answer = Read-Host 'Is this the right tenant? Type Y to continue, anything else to stop'
        if ($answer -notmatch '^\s*(y|yes)\s*$') {
            Write-Host 'Stopped. Nothing was changed. (Pass -TenantId to choose the tenant.)' -ForegroundColor Yellow
            return
        }
    }

    # Role ids are looked up by name: they are the same everywhere today, but the names are the contract.
    $graphSp = Invoke-WithRetry -What 'Looking up Microsoft Graph' -Action { Get-MgServicePrincipal -Filter "appId eq '$GraphAppId'" }
    if (-not $graphSp) { throw 'The Microsoft Graph service principal was not found in this tenant.' }
    if ($SignInApp) {
        $roles = foreach ($value in $SignInScopes) {
            $scope = $graphSp.Oauth2PermissionScopes | Where-Object { $_.Value -eq $value }
            if (-not $scope) { throw "Microsoft Graph has no delegated permission named $value." }
            $scope
        }
    }
    else {
        $roles = foreach ($value in $KodoRoles) {
            $role = $graphSp.AppRoles | Where-Object { $_.Value -eq $value -and $_.AllowedMemberTypes -contains 'Application' }
            if (-not $role) { throw "Microsoft Graph has no application permission named $value." }
            $role
        }
    }

    # --- App registration ------------------------------------------------------------------------
    $odataName = $AppName.Replace("'", "''")
    $apps = @(Get-MgApplication -Filter "displayName eq '$odataName'" -All)
    if ($apps.Count -gt 1) {
        throw "There are $($apps.Count) app registrations named '$AppName' (object ids: $(($apps | ForEach-Object Id) -join ', ')). Delete the extra ones or pass a different -AppName."
    }
    if ($apps.Count -eq 1) {
        $app = $apps[0]
        Write-Host "Reusing app registration '$AppName' (client id $($app.AppId)). A new certificate and secret will be added; the old ones stay valid until they expire." -ForegroundColor Cyan

        # Someone may have removed permissions in the portal; put back the ones Kodo needs, keep the rest.
        $graphAccess = @(foreach ($entry in @($app.RequiredResourceAccess)) { if ($entry -and $entry.ResourceAppId -eq $GraphAppId) { $entry } })
        $requested = @(foreach ($entry in $graphAccess) { foreach ($access in @($entry.ResourceAccess)) { if ($access) { $access } } })
        $missing = @(foreach ($role in $roles) { if (-not ($requested | Where-Object { $_.Id -eq $role.Id -and $_.Type -eq $AccessType })) { $role } })
        if ($missing.Count -gt 0) {
            $others = @(foreach ($entry in @($app.RequiredResourceAccess)) { if ($entry -and $entry.ResourceAppId -ne $GraphAppId) { $entry } })
            $graphEntry = @{
                ResourceAppId  = $GraphAppId
                ResourceAccess = @($requested | ForEach-Object { @{ Id = $_.Id; Type = $_.Type } }) + @($missing | ForEach-Object { @{ Id = $_.Id; Type = $AccessType } })
            }
            Update-MgApplication -ApplicationId $app.Id -RequiredResourceAccess (@($others) + $graphEntry)
            Write-Host "Added missing permissions: $(($missing | ForEach-Object Value) -join ', ')."
        }
        if ($SignInApp -and @($app.SignInAudience) -notcontains 'AzureADMultipleOrgs') {
            throw "The app registration '$AppName' is not multi-tenant (its sign-in audience is $($app.SignInAudience)). Pass another -AppName: Sign in with Microsoft needs a multi-tenant app."
        }
        $replyUrls = @(if ($app.Web) { @($app.Web.RedirectUris) | Where-Object { $_ } })
        if ($SignInApp -and $replyUrls -notcontains $RedirectUri) {
            Update-MgApplication -ApplicationId $app.Id -Web @{ RedirectUris = @($replyUrls) + $RedirectUri }
            Write-Host "Added the reply URL $RedirectUri."
        }
    }
    else {
        $audience = if ($SignInApp) { 'AzureADMultipleOrgs' } else { 'AzureADMyOrg' }
        $webArgument = @{}
        if ($SignInApp) { $webArgument.Web = @{ RedirectUris = @($RedirectUri) } }
        $app = New-MgApplication -DisplayName $AppName -SignInAudience $audience @webArgument -RequiredResourceAccess @(
            @{ ResourceAppId = $GraphAppId; ResourceAccess = @($roles | ForEach-Object { @{ Id = $_.Id; Type = $AccessType } }) }
        )
        Write-Host "Created app registration '$AppName' (client id $($app.AppId))." -ForegroundColor Green
    }

    # --- Certificate -----------------------------------------------------------------------------
    $cert = New-SelfSignedCertificate -Subject "CN=$(ConvertTo-X500Value $AppName)" -FriendlyName $AppName `
        -CertStoreLocation 'Cert:\CurrentUser\My' -KeyExportPolicy Exportable -KeySpec Signature `
        -KeyAlgorithm RSA -KeyLength 2048 -HashAlgorithm SHA256 -NotAfter (Get-Date).AddYears($CertificateYears)
    $certificateThumbprint = $cert.Thumbprint
    $pfxPassword = New-StrongPassword
    $securePassword = ConvertTo-SecureString -String $pfxPassword -AsPlainText -Force
    # By store path, not -Cert $cert: under PowerShell 7 the object form fails on some Windows builds
    # with "Cannot export non-exportable private key" (PowerShell/PowerShell#12081).
    Export-PfxCertificate -Cert "Cert:\CurrentUser\My\$certificateThumbprint" -FilePath $PfxPath -Password $securePassword -Force | Out-Null
    $pfxWritten = $true
    $pfxBase64 = [Convert]::ToBase64String([System.IO.File]::ReadAllBytes($PfxPath))
    Remove-StoreCertificate $certificateThumbprint
    $certificateThumbprint = $null
    Write-Host "Created certificate $($cert.Thumbprint) and exported it to $PfxPath (removed from the certificate store)."

    # Update-MgApplication replaces the whole keyCredentials list, and the key bytes are only returned
    # when selected on a single application; without them the earlier certificates would be deleted.
    $existingKeys = @((Get-MgApplication -ApplicationId $app.Id -Property @('id', 'keyCredentials')).KeyCredentials | Where-Object { $_ })
    if ($existingKeys | Where-Object { -not $_.Key }) { throw 'Could not read the existing certificates of the app; not touching them.' }
    $newKey = @{
        Type          = 'AsymmetricX509Cert'
        Usage         = 'Verify'
        Key           = $cert.RawData
        DisplayName   = $cert.Subject
        StartDateTime = $cert.NotBefore.ToUniversalTime()
        EndDateTime   = $cert.NotAfter.ToUniversalTime()
    }
    Invoke-WithRetry -What 'Uploading the certificate' -Action {
        Update-MgApplication -ApplicationId $app.Id -KeyCredentials (@($existingKeys) + $newKey)
    }
    Write-Host 'Uploaded the public certificate to the app registration.'

    # Written as soon as the certificate works, and again once the secret exists: a later failure
    # never loses a credential that Entra ID already accepts.
    $settings = [ordered] @{
        AppName               = [string] $AppName
        TenantId              = [string] $tenant
        ClientId              = [string] $app.AppId
        Cloud                 = [string] $KodoCloudNames[$Cloud]
        ClientSecret          = ''
        CertificatePassword   = [string] $pfxPassword
        CertificatePfxBase64  = $pfxBase64
        CertificateThumbprint = [string] $cert.Thumbprint
        CertificateNotAfter   = $cert.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    }
    Write-KodoSettings $settings
    $settingsWritten = $true

    # --- Service principal and admin consent -----------------------------------------------------
    $sp = Invoke-WithRetry -What 'Looking up the service principal' -Action { Get-MgServicePrincipal -Filter "appId eq '$($app.AppId)'" }
    if (-not $sp) {
        $sp = Invoke-WithRetry -What 'Creating the service principal' -Action { New-MgServicePrincipal -AppId $app.AppId }
        Write-Host 'Created the service principal (enterprise application).'
    }

    # Application permissions are consented by assigning Graph's app roles to our service principal;
    # this needs a Global Administrator or Privileged Role Administrator.
    $consented = $true
    if ($SignInApp) {
        # Delegated permissions: consented by each tenant that signs in (the URL printed at the end).
        $consented = $false
    }
    else {
        try {
            $assigned = @(Invoke-WithRetry -What 'Reading the granted permissions' -Action {
                    Get-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -All |
                        Where-Object { $_.ResourceId -eq $graphSp.Id } | ForEach-Object { [string] $_.AppRoleId }
                })
            foreach ($role in $roles) {
                if ($assigned -contains [string] $role.Id) { Write-Host "  $($role.Value): already granted"; continue }
                Invoke-WithRetry -What "Granting $($role.Value)" -Action {
                    try {
                        New-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -PrincipalId $sp.Id -ResourceId $graphSp.Id -AppRoleId $role.Id | Out-Null
                    }
                    catch {
                        # An earlier attempt that timed out on our side may have succeeded.
                        if ($_.Exception.Message -notmatch 'already exists') { throw }
                    }
                }
                Write-Host "  $($role.Value): granted"
            }
        }
        catch {
            $consented = $false
            Write-Warning "Granting admin consent failed: $($_.Exception.Message)"
            Write-ManualConsentSteps
        }
    }

    # --- Client secret, last ---------------------------------------------------------------------
    # A secret is readable only now; one that is not saved must not stay valid, unseen, in the app.
    $secret = Invoke-WithRetry -What 'Adding the client secret' -Action {
        Add-MgApplicationPassword -ApplicationId $app.Id -PasswordCredential @{
            DisplayName = "Kodo $(Get-Date -Format 'yyyy-MM-dd')"
            EndDateTime = (Get-Date).ToUniversalTime().AddYears($SecretYears)
        }
    }
    $secretSaved = $false
    try {
        $settings.ClientSecret = [string] $secret.SecretText
        Write-KodoSettings $settings
        $secretSaved = $true
    }
    finally {
        if (-not $secretSaved) {
            Write-Warning "Could not write $JsonPath; removing the new client secret again."
            try { Remove-MgApplicationPassword -ApplicationId $app.Id -KeyId $secret.KeyId }
            catch { Write-Warning "Removing it failed ($($_.Exception.Message)): delete the secret with id $($secret.KeyId) under Certificates & secrets in the portal." }
        }
    }

    # --- Results (no secrets on screen: they are in the file) ------------------------------------
    Write-Host ''
    if ($SignInApp) {
        $encodedReply = [System.Uri]::EscapeDataString($RedirectUri)
        Write-Host 'Sign in with Microsoft: set these in Kodo''s environment (README, Configuration) and restart it:' -ForegroundColor Green
        Write-Host "  KODO_MICROSOFT_SIGNIN_CLIENT_ID     = $($settings.ClientId)"
        Write-Host "  KODO_MICROSOFT_SIGNIN_CLIENT_SECRET = ClientSecret in $JsonPath"
        Write-Host "  (or KODO_MICROSOFT_SIGNIN_CERTIFICATE = $PfxPath and KODO_MICROSOFT_SIGNIN_CERTIFICATE_PASSWORD = CertificatePassword in $JsonPath)"
        Write-Host "  KODO_BASE_URL                       = $($PortalUrl.TrimEnd('/'))  (the reply URL is $RedirectUri)"
        Write-Host 'Consent: an administrator of each customer tenant opens this address once and accepts (replace <tenant> by its tenant ID or domain):' -ForegroundColor Yellow
        Write-Host "  $($LoginHosts[$Cloud])/<tenant>/adminconsent?client_id=$($settings.ClientId)&redirect_uri=$encodedReply"
        Write-Host '  Without it, each user is asked to consent on their first sign-in (where the tenant lets users consent).'
        Write-Host "$JsonPath holds secrets: delete it and $PfxPath once Kodo has them." -ForegroundColor Yellow
    }
    else {
        Write-Host 'Upload KodoADSettings.json in Kodo: Services > gear icon of Office 365 > Configuration > + ADD CONFIGURATION.' -ForegroundColor Green
        Write-Host "  Tenant ID            : $($settings.TenantId)"
        Write-Host "  Client ID            : $($settings.ClientId)"
        Write-Host "  Cloud                : $($settings.Cloud)"
        Write-Host "  Client Secret        : in KodoADSettings.json (valid until $($secret.EndDateTime))"
        Write-Host '  Certificate Password : in KodoADSettings.json'
        Write-Host "  Private Certificate  : $PfxPath (thumbprint $($settings.CertificateThumbprint), valid until $($settings.CertificateNotAfter))"
        Write-Host "  Permissions          : $($KodoRoles -join ', ')"
        Write-Host ''
        Write-Host "All values are in $JsonPath. It holds secrets: delete it and $PfxPath after uploading them to Kodo." -ForegroundColor Yellow
        if ($BackupOnly) { Write-Host 'Read permissions only (-BackupOnly): grant Files.ReadWrite.All before restoring; TEST CONNECTION in Kodo names it.' -ForegroundColor Yellow }
        if (-not $consented) { Write-Host 'Remember to grant admin consent (steps above) before importing users.' -ForegroundColor Yellow }
    }
    $completed = $true
}
finally {
    if ($certificateThumbprint) { Remove-StoreCertificate $certificateThumbprint }
    if ($settingsWritten -and -not $completed) {
        Write-Warning "The script stopped early. $JsonPath holds what it created so far (the certificate works; fix the error and run it again for the rest)."
    }
    if ($pfxWritten -and -not $settingsWritten -and (Test-Path -LiteralPath $PfxPath)) {
        # Its password was never saved: the file is of no use to anyone.
        Remove-Item -LiteralPath $PfxPath -Force
    }
    if (Get-MgContext) { Disconnect-MgGraph | Out-Null }
}
