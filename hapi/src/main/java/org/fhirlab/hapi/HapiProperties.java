package org.fhirlab.hapi;

import ca.uhn.fhir.context.FhirVersionEnum;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings.ClientIdStrategyEnum;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings.IdStrategyEnum;
import ca.uhn.fhir.rest.api.EncodingEnum;
import org.springframework.boot.context.properties.ConfigurationProperties;

import java.util.ArrayList;
import java.util.List;

/**
 * The {@code hapi.fhir.*} keys this launcher honours.
 *
 * <p>Key names are those of the official {@code hapiproject/hapi} image's application.yaml
 * ({@code hapi.fhir.bulk_export_enabled}, {@code hapi.fhir.server_address}, ...), so one settings
 * file configures both. Spring's relaxed binding maps the image's snake_case keys (and environment
 * variables such as {@code HAPI_FHIR_BULK_EXPORT_ENABLED}) onto these camelCase fields. Defaults are
 * the image's defaults, so a key left out behaves as it does in the image. Keys of the image that are
 * not listed here are ignored.
 */
@ConfigurationProperties(prefix = "hapi.fhir")
public class HapiProperties {

	/** Only R4 is wired; anything else stops the server at startup. */
	private FhirVersionEnum fhirVersion = FhirVersionEnum.R4;

	/** Base URL written into links (paging, Location, bulk export output); empty = from the request. */
	private String serverAddress;

	/** Derive the base URL from X-Forwarded-* headers (as set by a reverse proxy). */
	private boolean useApacheAddressStrategy = false;

	private boolean useApacheAddressStrategyHttps = false;

	// --- bulk data -----------------------------------------------------------------------------

	/** Registers $export (system, Patient, Group). Off in the image, on in our application.yaml. */
	private boolean bulkExportEnabled = false;

	private Integer bulkExportFileRetentionPeriodHours = 2;

	// --- write / delete / references -------------------------------------------------------------

	private boolean allowExternalReferences = false;

	private boolean allowMultipleDelete = false;

	private boolean allowContainsSearches = true;

	private boolean autoCreatePlaceholderReferenceTargets = false;

	private boolean enforceReferentialIntegrityOnWrite = true;

	private boolean enforceReferentialIntegrityOnDelete = true;

	private boolean expungeEnabled = true;

	private boolean deleteExpungeEnabled = false;

	private ClientIdStrategyEnum clientIdStrategy = ClientIdStrategyEnum.ALPHANUMERIC;

	/** null = HAPI's default (SEQUENTIAL_NUMERIC). */
	private IdStrategyEnum serverIdStrategy;

	// --- search and paging -----------------------------------------------------------------------

	private int defaultPageSize = 20;

	private int maxPageSize = Integer.MAX_VALUE;

	/** An identical search repeated within this window is answered from the cached result. */
	private long reuseCachedSearchResultsMillis = 60_000L;

	private long retainCachedSearchesMins = 60L;

	/** e.g. 13,503,2003,-1; empty = HAPI's default. */
	private List<Integer> searchPrefetchThresholds = new ArrayList<>();

	// --- responses -------------------------------------------------------------------------------

	private boolean narrativeEnabled = true;

	private boolean defaultPrettyPrint = true;

	private EncodingEnum defaultEncoding = EncodingEnum.JSON;

	private boolean etagSupportEnabled = true;

	public FhirVersionEnum getFhirVersion() {
		return fhirVersion;
	}

	public void setFhirVersion(FhirVersionEnum theFhirVersion) {
		fhirVersion = theFhirVersion;
	}

	public String getServerAddress() {
		return serverAddress;
	}

	public void setServerAddress(String theServerAddress) {
		serverAddress = theServerAddress;
	}

	public boolean isUseApacheAddressStrategy() {
		return useApacheAddressStrategy;
	}

	public void setUseApacheAddressStrategy(boolean theValue) {
		useApacheAddressStrategy = theValue;
	}

	public boolean isUseApacheAddressStrategyHttps() {
		return useApacheAddressStrategyHttps;
	}

	public void setUseApacheAddressStrategyHttps(boolean theValue) {
		useApacheAddressStrategyHttps = theValue;
	}

	public boolean isBulkExportEnabled() {
		return bulkExportEnabled;
	}

	public void setBulkExportEnabled(boolean theValue) {
		bulkExportEnabled = theValue;
	}

	public Integer getBulkExportFileRetentionPeriodHours() {
		return bulkExportFileRetentionPeriodHours;
	}

	public void setBulkExportFileRetentionPeriodHours(Integer theValue) {
		bulkExportFileRetentionPeriodHours = theValue;
	}

	public boolean isAllowExternalReferences() {
		return allowExternalReferences;
	}

	public void setAllowExternalReferences(boolean theValue) {
		allowExternalReferences = theValue;
	}

	public boolean isAllowMultipleDelete() {
		return allowMultipleDelete;
	}

	public void setAllowMultipleDelete(boolean theValue) {
		allowMultipleDelete = theValue;
	}

	public boolean isAllowContainsSearches() {
		return allowContainsSearches;
	}

	public void setAllowContainsSearches(boolean theValue) {
		allowContainsSearches = theValue;
	}

	public boolean isAutoCreatePlaceholderReferenceTargets() {
		return autoCreatePlaceholderReferenceTargets;
	}

	public void setAutoCreatePlaceholderReferenceTargets(boolean theValue) {
		autoCreatePlaceholderReferenceTargets = theValue;
	}

	public boolean isEnforceReferentialIntegrityOnWrite() {
		return enforceReferentialIntegrityOnWrite;
	}

	public void setEnforceReferentialIntegrityOnWrite(boolean theValue) {
		enforceReferentialIntegrityOnWrite = theValue;
	}

	public boolean isEnforceReferentialIntegrityOnDelete() {
		return enforceReferentialIntegrityOnDelete;
	}

	public void setEnforceReferentialIntegrityOnDelete(boolean theValue) {
		enforceReferentialIntegrityOnDelete = theValue;
	}

	public boolean isExpungeEnabled() {
		return expungeEnabled;
	}

	public void setExpungeEnabled(boolean theValue) {
		expungeEnabled = theValue;
	}

	public boolean isDeleteExpungeEnabled() {
		return deleteExpungeEnabled;
	}

	public void setDeleteExpungeEnabled(boolean theValue) {
		deleteExpungeEnabled = theValue;
	}

	public ClientIdStrategyEnum getClientIdStrategy() {
		return clientIdStrategy;
	}

	public void setClientIdStrategy(ClientIdStrategyEnum theValue) {
		clientIdStrategy = theValue;
	}

	public IdStrategyEnum getServerIdStrategy() {
		return serverIdStrategy;
	}

	public void setServerIdStrategy(IdStrategyEnum theValue) {
		serverIdStrategy = theValue;
	}

	public int getDefaultPageSize() {
		return defaultPageSize;
	}

	public void setDefaultPageSize(int theValue) {
		defaultPageSize = theValue;
	}

	public int getMaxPageSize() {
		return maxPageSize;
	}

	public void setMaxPageSize(int theValue) {
		maxPageSize = theValue;
	}

	public long getReuseCachedSearchResultsMillis() {
		return reuseCachedSearchResultsMillis;
	}

	public void setReuseCachedSearchResultsMillis(long theValue) {
		reuseCachedSearchResultsMillis = theValue;
	}

	public long getRetainCachedSearchesMins() {
		return retainCachedSearchesMins;
	}

	public void setRetainCachedSearchesMins(long theValue) {
		retainCachedSearchesMins = theValue;
	}

	public List<Integer> getSearchPrefetchThresholds() {
		return searchPrefetchThresholds;
	}

	public void setSearchPrefetchThresholds(List<Integer> theValue) {
		searchPrefetchThresholds = theValue;
	}

	public boolean isNarrativeEnabled() {
		return narrativeEnabled;
	}

	public void setNarrativeEnabled(boolean theValue) {
		narrativeEnabled = theValue;
	}

	public boolean isDefaultPrettyPrint() {
		return defaultPrettyPrint;
	}

	public void setDefaultPrettyPrint(boolean theValue) {
		defaultPrettyPrint = theValue;
	}

	public EncodingEnum getDefaultEncoding() {
		return defaultEncoding;
	}

	public void setDefaultEncoding(EncodingEnum theValue) {
		defaultEncoding = theValue;
	}

	public boolean isEtagSupportEnabled() {
		return etagSupportEnabled;
	}

	public void setEtagSupportEnabled(boolean theValue) {
		etagSupportEnabled = theValue;
	}
}
