<#
.SYNOPSIS
  Certflow remote-command script for Windows Server: imports a renewed certificate into LocalMachine\My and
  moves every IIS site binding and http.sys SSL binding from the old thumbprint to the new one.

.DESCRIPTION
  Certflow runs this script over SSH (Windows' OpenSSH server) and follows the contract of docs/hosts.md:

  stdin   one JSON document:
            { "version": 1, "certificateId": "kv-prod/www", "thumbprint": "<new SHA-1>",
              "previousThumbprint": "<old SHA-1>" | null,
              "pfx": "<base64 PKCS#12>" (absent on a rollback: the certificate is already in the store),
              "password": "<the PKCS#12 password>",
              "hostNames": ["www.contoso.com"] (bindings to move whatever certificate they are on),
              "removePreviousAfterDays": 7 | null }
  stdout  one JSON document: { "version": 1, "bindings": [ { "binding", "hostName", "before", "after",
            "status": "bound" | "unchanged" | "restored" | "failed", "detail" } ] }
  exit    0 when every binding is on the new thumbprint; 1 when one failed, after every binding this run moved
          was put back ("restored"); 2 when the input is unusable (nothing changed).

  Selected: every IIS https binding and every http.sys SSL binding (netsh http show sslcert) whose certificate is
  previousThumbprint, or whose host name is in hostNames; bindings already on thumbprint are reported "unchanged".
  http.sys entries that belong to IIS bindings are moved with them, not twice.

  Nothing secret is written: the PKCS#12 is imported from memory (no temporary file), and neither it nor its
  password appears on stdout, stderr or in a log.

  Requirements: Windows Server 2019 or later (PKCS#12 with AES-256 and SHA-256, as Certflow writes it), Windows
  PowerShell 5.1 or PowerShell 7, the WebAdministration module (IIS Management Scripts and Tools) when IIS is
  installed, and an account in the local Administrators group. See README.md beside this file.

  This script is not tested by Certflow's CI (PowerShell and IIS do not run there); its contract is, with a POSIX
  stand-in (test/fixtures/bindings/iis-standin.mjs).
#>
[CmdletBinding()]
param()

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$IisAppId = '{4dc3e181-e14b-4a21-b022-59fc669b0914}'

function Write-Problem([string] $message) {
  [Console]::Error.WriteLine($message)
}

function Exit-WithAnswer([object[]] $bindings, [int] $code) {
  $answer = [ordered]@{ version = 1; bindings = @($bindings) }
  [Console]::Out.WriteLine(($answer | ConvertTo-Json -Depth 5 -Compress))
  exit $code
}

function Get-Normalized([string] $thumbprint) {
  if ([string]::IsNullOrWhiteSpace($thumbprint)) { return $null }
  return ($thumbprint -replace '[^0-9A-Fa-f]', '').ToUpperInvariant()
}

# ---- input ----------------------------------------------------------------------------------------------------
try {
  $request = [Console]::In.ReadToEnd() | ConvertFrom-Json
} catch {
  Write-Problem "stdin is not a JSON document: $($_.Exception.Message)"
  exit 2
}
if ($request.version -ne 1) {
  Write-Problem "unsupported contract version '$($request.version)' (this script speaks version 1)"
  exit 2
}
$new = Get-Normalized $request.thumbprint
$old = Get-Normalized $request.previousThumbprint
$hostNames = @()
if ($request.PSObject.Properties['hostNames'] -and $request.hostNames) {
  $hostNames = @($request.hostNames | ForEach-Object { $_.ToLowerInvariant() })
}
if (-not $new -or $new.Length -ne 40) {
  Write-Problem 'thumbprint: expected a SHA-1 thumbprint (40 hex digits)'
  exit 2
}

# ---- import: the leaf with its key into LocalMachine\My, intermediates into LocalMachine\CA --------------------
if ($request.PSObject.Properties['pfx'] -and $request.pfx) {
  try {
    $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]'MachineKeySet,PersistKeySet'
    $collection = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2Collection
    $collection.Import([Convert]::FromBase64String($request.pfx), $request.password, $flags)
    $leaf = $collection | Where-Object { $_.HasPrivateKey } | Select-Object -First 1
    if (-not $leaf) { throw 'the PKCS#12 holds no certificate with a private key' }
    if ($leaf.Thumbprint -ne $new) { throw "the PKCS#12 holds $($leaf.Thumbprint), expected $new" }
    $my = New-Object System.Security.Cryptography.X509Certificates.X509Store('My', 'LocalMachine')
    $my.Open('ReadWrite')
    try { $my.Add($leaf) } finally { $my.Close() }
    $ca = New-Object System.Security.Cryptography.X509Certificates.X509Store('CA', 'LocalMachine')
    $ca.Open('ReadWrite')
    try {
      foreach ($c in $collection) { if (-not $c.HasPrivateKey) { $ca.Add($c) } }
    } finally { $ca.Close() }
  } catch {
    Write-Problem "import into LocalMachine\My failed: $($_.Exception.Message)"
    exit 2
  } finally {
    $request.password = $null
    $request.pfx = $null
  }
}
if (-not (Test-Path "Cert:\LocalMachine\My\$new")) {
  Write-Problem "certificate $new is not in LocalMachine\My (and no pfx was given)"
  exit 2
}

# ---- the bindings -----------------------------------------------------------------------------------------------
# Each entry: Name (shown), HostName, Thumbprint, and Move([string] $thumbprint) that puts it on another certificate.
$entries = New-Object System.Collections.ArrayList
$iisEndpoints = @{}

if (Get-Module -ListAvailable -Name WebAdministration) {
  Import-Module WebAdministration
  foreach ($site in Get-Website) {
    foreach ($binding in @($site.bindings.Collection | Where-Object { $_.protocol -eq 'https' })) {
      $info = $binding.bindingInformation # ip:port:host
      $parts = $info.Split(':')
      $hostName = if ($parts.Count -ge 3 -and $parts[2]) { $parts[2].ToLowerInvariant() } else { $null }
      $webBinding = Get-WebBinding -Name $site.name -Protocol https | Where-Object { $_.bindingInformation -eq $info }
      $thumb = Get-Normalized $webBinding.certificateHash
      $endpoint = if ($hostName -and ($webBinding.sslFlags -band 1)) { "$($hostName):$($parts[1])" } else { "$(if ($parts[0] -eq '*') { '0.0.0.0' } else { $parts[0] }):$($parts[1])" }
      $iisEndpoints[$endpoint.ToLowerInvariant()] = $true
      [void]$entries.Add([pscustomobject]@{
          Name       = "IIS:$($site.name) https $info"
          HostName   = $hostName
          Thumbprint = $thumb
          Binding    = $webBinding
          Kind       = 'iis'
          Endpoint   = $null
          AppId      = $null
        })
    }
  }
}

# http.sys SSL bindings that are not IIS's (e.g. WinRM, ADFS, a self-hosted service)
$current = $null
foreach ($line in (& netsh http show sslcert)) {
  if ($line -match '^\s*(IP:port|Hostname:port)\s*:\s*(\S+)') {
    $current = [pscustomobject]@{ Kind = $Matches[1]; Endpoint = $Matches[2]; Hash = $null; AppId = $null }
  } elseif ($current -and $line -match '^\s*Certificate Hash\s*:\s*(\S+)') {
    $current.Hash = Get-Normalized $Matches[1]
  } elseif ($current -and $line -match '^\s*Application ID\s*:\s*(\S+)') {
    $current.AppId = $Matches[1]
    if (-not $iisEndpoints.ContainsKey($current.Endpoint.ToLowerInvariant()) -and $current.AppId -ne $IisAppId) {
      $hostName = if ($current.Kind -eq 'Hostname:port') { $current.Endpoint.Split(':')[0].ToLowerInvariant() } else { $null }
      [void]$entries.Add([pscustomobject]@{
          Name       = "http.sys:$($current.Endpoint)"
          HostName   = $hostName
          Thumbprint = $current.Hash
          Binding    = $null
          Kind       = if ($current.Kind -eq 'Hostname:port') { 'hostnameport' } else { 'ipport' }
          Endpoint   = $current.Endpoint
          AppId      = $current.AppId
        })
    }
    $current = $null
  }
}

function Move-Binding($entry, [string] $thumbprint) {
  if ($entry.Kind -eq 'iis') {
    $entry.Binding.AddSslCertificate($thumbprint, 'My')
  } else {
    $out = & netsh http update sslcert "$($entry.Kind)=$($entry.Endpoint)" "certhash=$thumbprint" "appid=$($entry.AppId)" 'certstorename=MY' 2>&1
    if ($LASTEXITCODE -ne 0) { throw "netsh http update sslcert $($entry.Endpoint): $($out -join ' ')" }
  }
}

# ---- move -------------------------------------------------------------------------------------------------------
$answer = New-Object System.Collections.ArrayList
$moved = New-Object System.Collections.ArrayList
$failed = $false
$selected = @($entries | Where-Object {
    ($_.Thumbprint -and ($_.Thumbprint -eq $old -or $_.Thumbprint -eq $new)) -or ($_.HostName -and $hostNames -contains $_.HostName)
  })
foreach ($entry in $selected) {
  if ($entry.Thumbprint -eq $new) {
    [void]$answer.Add([ordered]@{ binding = $entry.Name; hostName = $entry.HostName; before = $new; after = $new; status = 'unchanged'; detail = '' })
    continue
  }
  try {
    Move-Binding $entry $new
    [void]$moved.Add($entry)
    [void]$answer.Add([ordered]@{ binding = $entry.Name; hostName = $entry.HostName; before = $entry.Thumbprint; after = $new; status = 'bound'; detail = 'moved' })
  } catch {
    $failed = $true
    [void]$answer.Add([ordered]@{ binding = $entry.Name; hostName = $entry.HostName; before = $entry.Thumbprint; after = $entry.Thumbprint; status = 'failed'; detail = $_.Exception.Message })
    Write-Problem "moving $($entry.Name) to $new failed: $($_.Exception.Message)"
    break
  }
}

if ($failed) {
  # put back every binding this run moved, newest first
  for ($i = $moved.Count - 1; $i -ge 0; $i--) {
    $entry = $moved[$i]
    $row = $answer | Where-Object { $_.binding -eq $entry.Name } | Select-Object -First 1
    try {
      if ($entry.Thumbprint) { Move-Binding $entry $entry.Thumbprint }
      $row.after = $entry.Thumbprint
      $row.status = 'restored'
      $row.detail = 'moved back after a failure'
    } catch {
      $row.status = 'failed'
      $row.detail = "moving back to $($entry.Thumbprint) failed too: $($_.Exception.Message)"
      Write-Problem $row.detail
    }
  }
  Exit-WithAnswer $answer 1
}

# ---- the previous certificate: removed after a grace period, when nothing uses it any more -----------------------
if ($old -and $request.PSObject.Properties['removePreviousAfterDays'] -and $null -ne $request.removePreviousAfterDays) {
  try {
    $days = [int]$request.removePreviousAfterDays
    $check = "if (-not ((& netsh http show sslcert) -match '$old')) { Remove-Item -Path 'Cert:\LocalMachine\My\$old' -ErrorAction SilentlyContinue }"
    $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument "-NoProfile -NonInteractive -Command `"$check`""
    $trigger = New-ScheduledTaskTrigger -Once -At (Get-Date).AddDays($days)
    Register-ScheduledTask -TaskName "Certflow remove $old" -Action $action -Trigger $trigger -User 'SYSTEM' -RunLevel Highest -Force | Out-Null
  } catch {
    # the bindings are moved: a cleanup that could not be scheduled is worth a line on stderr, not a failure
    Write-Problem "scheduling the removal of $old failed: $($_.Exception.Message)"
  }
}

Exit-WithAnswer $answer 0
