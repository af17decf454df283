<#
.SYNOPSIS
    Registers the Kodo backup application in a Microsoft 365 tenant and writes KodoADSettings.json.

.DESCRIPTION
    Creates (or reuses, by display name) an app registration with the Microsoft Graph application
    permissions Kodo needs (User.Read.All, Files.Read.All, Files.ReadWrite.All), adds a client
    secret and a self-signed certificate to it, grants admin consent, and writes the values Kodo asks
    for to KodoADSettings.json (and the certificate to KodoADSettings.pfx) in the current folder.
    Every run adds a NEW secret and a NEW certificate; older ones stay valid until they expire.
    KodoADSettings.json holds secrets: delete it once you have uploaded it to Kodo.

.PARAMETER TenantId
    Tenant to sign in to (GUID or contoso.onmicrosoft.com). Default: the tenant of the account you sign in with.

.PARAMETER AppName
    Display name of the app registration. An existing registration with this name is reused.

.PARAMETER SecretYears
    Lifetime of the new client secret, in years.

.PARAMETER CertificateYears
    Lifetime of the new self-signed certificate, in years.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File .\Register-KodoApp.ps1 -TenantId contoso.onmicrosoft.com
#>
#Requires -Version 5.1
[CmdletBinding()]
param(
    [string] $TenantId,
    [ValidateNotNullOrEmpty()] [string] $AppName = 'Kodo Backup',
    [ValidateRange(1, 10)] [int] $SecretYears = 2,
    [ValidateRange(1, 10)] [int] $CertificateYears = 2
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$GraphAppId = '00000003-0000-0000-c000-000000000000'  # Microsoft Graph, the same in every tenant
$KodoRoles = @('User.Read.All', 'Files.Read.All', 'Files.ReadWrite.All')
# .NET resolves relative paths against the process folder, not PowerShell's current location.
$OutFolder = (Get-Location -PSProvider FileSystem).ProviderPath
$JsonPath = Join-Path $OutFolder 'KodoADSettings.json'
$PfxPath = Join-Path $OutFolder 'KodoADSettings.pfx'

function Invoke-WithRetry([scriptblock] $Action, [string] $What) {
    # Entra replicates new objects for a few seconds; a fresh app or service principal is often
    # "not found" by the very next call.
    for ($attempt = 1; ; $attempt++) {
        try { return & $Action }
        catch {
            $notYetThere = $_.Exception.Message -match 'does not exist|not found|NotFound|does not reference a valid application'
            if (-not $notYetThere -or $attempt -ge 6) { throw }
            Write-Host "  $What failed ($($_.Exception.Message)); retrying in 10 s..." -ForegroundColor DarkYellow
            Start-Sleep -Seconds 10
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

function Write-ManualConsentSteps {
    Write-Host ''
    Write-Host 'Admin consent could not be granted automatically. Grant it in the portal:' -ForegroundColor Yellow
    Write-Host '  1. Sign in to https://portal.azure.com as a Global Administrator'
    Write-Host '  2. Select "Microsoft Entra ID" (formerly "Azure Active Directory")'
    Write-Host '  3. Go to "App registrations" > "All applications"'
    Write-Host "  4. Click the application name ""$AppName"""
    Write-Host '  5. Select "API permissions"'
    Write-Host '  6. Click "Grant admin consent for <your organization>" and confirm with "Yes"'
    Write-Host ''
}

# --- Modules -------------------------------------------------------------------------------------
# The PowerShell Gallery only accepts TLS 1.2, which Windows PowerShell 5.1 does not enable by default.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
foreach ($module in 'Microsoft.Graph.Authentication', 'Microsoft.Graph.Applications') {
    # Version 1 of the SDK lacks parameters used below, so an old copy counts as missing.
    if (-not (Get-Module -ListAvailable -Name $module | Where-Object { $_.Version -ge [version] '2.0.0' })) {
        Write-Host "Installing $module for the current user..."
        if (-not (Get-PackageProvider -ListAvailable -Name NuGet -ErrorAction SilentlyContinue)) {
            Install-PackageProvider -Name NuGet -MinimumVersion 2.8.5.201 -Scope CurrentUser -Force | Out-Null
        }
        # -Force answers the "untrusted repository" question that PSGallery raises by default.
        Install-Module -Name $module -MinimumVersion 2.0.0 -Scope CurrentUser -Repository PSGallery -Force
    }
}
# Importing Applications loads the Authentication version it was built with; importing both could
# load two versions of the same assembly.
Import-Module Microsoft.Graph.Applications

# --- Sign in -------------------------------------------------------------------------------------
$connect = @{ Scopes = @('Application.ReadWrite.All', 'AppRoleAssignment.ReadWrite.All') }
if ($TenantId) { $connect.TenantId = $TenantId }
Connect-MgGraph @connect | Out-Null
$tenant = [string] (Get-MgContext).TenantId
Write-Host "Signed in to tenant $tenant."

# Role ids are looked up by name: they are the same everywhere today, but the names are the contract.
$graphSp = Get-MgServicePrincipal -Filter "appId eq '$GraphAppId'"
if (-not $graphSp) { throw 'The Microsoft Graph service principal was not found in this tenant.' }
$roles = foreach ($value in $KodoRoles) {
    $role = $graphSp.AppRoles | Where-Object { $_.Value -eq $value -and $_.AllowedMemberTypes -contains 'Application' }
    if (-not $role) { throw "Microsoft Graph has no application permission named $value." }
    $role
}

# --- App registration ----------------------------------------------------------------------------
$odataName = $AppName.Replace("'", "''")
$apps = @(Get-MgApplication -Filter "displayName eq '$odataName'" -All)
if ($apps.Count -gt 1) {
    throw "There are $($apps.Count) app registrations named '$AppName' (object ids: $(($apps | ForEach-Object Id) -join ', ')). Delete the extra ones or pass a different -AppName."
}
if ($apps.Count -eq 1) {
    $app = $apps[0]
    Write-Host "Reusing app registration '$AppName' (client id $($app.AppId)). A new secret and certificate will be added; the old ones stay valid until they expire." -ForegroundColor Cyan

    # Someone may have removed permissions in the portal; put back the ones Kodo needs, keep the rest.
    $graphAccess = @(foreach ($entry in @($app.RequiredResourceAccess)) { if ($entry -and $entry.ResourceAppId -eq $GraphAppId) { $entry } })
    $requested = @(foreach ($entry in $graphAccess) { foreach ($access in @($entry.ResourceAccess)) { if ($access) { $access } } })
    $missing = @(foreach ($role in $roles) { if (-not ($requested | Where-Object { $_.Id -eq $role.Id -and $_.Type -eq 'Role' })) { $role } })
    if ($missing.Count -gt 0) {
        $others = @(foreach ($entry in @($app.RequiredResourceAccess)) { if ($entry -and $entry.ResourceAppId -ne $GraphAppId) { $entry } })
        $graphEntry = @{
            ResourceAppId  = $GraphAppId
            ResourceAccess = @($requested | ForEach-Object { @{ Id = $_.Id; Type = $_.Type } }) + @($missing | ForEach-Object { @{ Id = $_.Id; Type = 'Role' } })
        }
        Update-MgApplication -ApplicationId $app.Id -RequiredResourceAccess (@($others) + $graphEntry)
        Write-Host "Added missing permissions: $(($missing | ForEach-Object Value) -join ', ')."
    }
}
else {
    $app = New-MgApplication -DisplayName $AppName -SignInAudience 'AzureADMyOrg' -RequiredResourceAccess @(
        @{ ResourceAppId = $GraphAppId; ResourceAccess = @($roles | ForEach-Object { @{ Id = $_.Id; Type = 'Role' } }) }
    )
    Write-Host "Created app registration '$AppName' (client id $($app.AppId))." -ForegroundColor Green
}

# --- Client secret -------------------------------------------------------------------------------
$secret = Invoke-WithRetry -What 'Adding the client secret' -Action {
    Add-MgApplicationPassword -ApplicationId $app.Id -PasswordCredential @{
        DisplayName = "Kodo $(Get-Date -Format 'yyyy-MM-dd')"
        EndDateTime = (Get-Date).ToUniversalTime().AddYears($SecretYears)
    }
}
Write-Host "Added a client secret valid until $($secret.EndDateTime)."

# --- Certificate ---------------------------------------------------------------------------------
$cert = New-SelfSignedCertificate -Subject "CN=$AppName" -FriendlyName $AppName `
    -CertStoreLocation 'Cert:\CurrentUser\My' -KeyExportPolicy Exportable -KeySpec Signature `
    -KeyAlgorithm RSA -KeyLength 2048 -HashAlgorithm SHA256 -NotAfter (Get-Date).AddYears($CertificateYears)
$pfxPassword = New-StrongPassword
$securePassword = ConvertTo-SecureString -String $pfxPassword -AsPlainText -Force
Export-PfxCertificate -Cert $cert -FilePath $PfxPath -Password $securePassword -Force | Out-Null
Write-Host "Created certificate $($cert.Thumbprint) in Cert:\CurrentUser\My, exported to $PfxPath."

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

# --- Service principal and admin consent ---------------------------------------------------------
$sp = Get-MgServicePrincipal -Filter "appId eq '$($app.AppId)'"
if (-not $sp) {
    $sp = Invoke-WithRetry -What 'Creating the service principal' -Action { New-MgServicePrincipal -AppId $app.AppId }
    Write-Host 'Created the service principal (enterprise application).'
}

# Application permissions are consented by assigning Graph's app roles to our service principal;
# this needs a Global Administrator or Privileged Role Administrator.
$consented = $true
try {
    $assigned = @(Get-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -All |
        Where-Object { $_.ResourceId -eq $graphSp.Id } | ForEach-Object { [string] $_.AppRoleId })
    foreach ($role in $roles) {
        if ($assigned -contains [string] $role.Id) { Write-Host "  $($role.Value): already granted"; continue }
        Invoke-WithRetry -What "Granting $($role.Value)" -Action {
            New-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -PrincipalId $sp.Id -ResourceId $graphSp.Id -AppRoleId $role.Id | Out-Null
        }
        Write-Host "  $($role.Value): granted"
    }
}
catch {
    $consented = $false
    Write-Warning "Granting admin consent failed: $($_.Exception.Message)"
    Write-ManualConsentSteps
}

# --- Results -------------------------------------------------------------------------------------
$settings = [ordered] @{
    AppName               = [string] $AppName
    TenantId              = [string] $tenant
    ClientId              = [string] $app.AppId
    ClientSecret          = [string] $secret.SecretText
    CertificatePassword   = [string] $pfxPassword
    CertificatePfxBase64  = [Convert]::ToBase64String([System.IO.File]::ReadAllBytes($PfxPath))
    CertificateThumbprint = [string] $cert.Thumbprint
    CertificateNotAfter   = $cert.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}
$json = $settings | ConvertTo-Json
[System.IO.File]::WriteAllText($JsonPath, $json, [System.Text.UTF8Encoding]::new($false))

Write-Host ''
Write-Host 'Enter these values in Kodo (Services > Configuration > + ADD CONFIGURATION):' -ForegroundColor Green
Write-Host "  Tenant ID            : $($settings.TenantId)"
Write-Host "  Client ID            : $($settings.ClientId)"
Write-Host "  Client Secret        : $($settings.ClientSecret)"
Write-Host "  Certificate Password : $($settings.CertificatePassword)"
Write-Host "  Private Certificate  : $PfxPath (thumbprint $($settings.CertificateThumbprint), valid until $($settings.CertificateNotAfter))"
Write-Host ''
Write-Host "All values are in $JsonPath. It holds secrets: delete it and $PfxPath after uploading them to Kodo." -ForegroundColor Yellow
if (-not $consented) { Write-Host 'Remember to grant admin consent (steps above) before importing users.' -ForegroundColor Yellow }
