package http

import "github.com/voxanne/voxanne"

// Features Voxanne does not offer answer GoTrue's status, code and message
// for a disabled one, never a 404 or a misleading validation message.
var (
	errAnonymousDisabled   = voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonAnonymousProviderDisabled, "Anonymous sign-ins are disabled")
	errPhoneSignupDisabled = voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonPhoneProviderDisabled, "Phone signups are disabled")
	errPhoneLoginDisabled  = voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonPhoneProviderDisabled, "Phone logins are disabled")
	errWeb3Disabled        = voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonWeb3ProviderDisabled, "Web3 provider is disabled")
	errIDTokenDisabled     = voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonProviderDisabled, "Provider is not enabled: Voxanne offers no OpenID Connect sign-in")
)

// disabledSignUp refuses a sign-up without an email address as GoTrue does
// with anonymous sign-ins and phone sign-ups off.
func disabledSignUp(email, phone string) error {
	switch {
	case email != "":
		return nil
	case phone != "":
		return errPhoneSignupDisabled
	}
	return errAnonymousDisabled
}

// disabledGrant answers the grant types of features Voxanne does not offer.
func disabledGrant(grant string) error {
	switch grant {
	case "id_token":
		return errIDTokenDisabled
	case "web3":
		return errWeb3Disabled
	}
	return nil
}
